/**
 * Reading node attributes with defaults, as the differentiation rules need them (ints come back
 * as plain numbers: every attribute a rule reads is an axis, a flag or a small size).
 *
 * @module
 */
import type { AttributeProto, NodeProto } from "../types.ts";

function find(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** An INT attribute as a number, or `fallback` when absent. */
export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = find(node, name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

/** A FLOAT attribute, or `fallback` when absent. */
export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = find(node, name);
  return a?.f !== undefined ? a.f : fallback;
}

/** An INTS attribute as numbers, or `undefined` when absent. */
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = find(node, name);
  return a?.ints !== undefined ? a.ints.map(Number) : undefined;
}

/** A FLOATS attribute, or `undefined` when absent. */
export function attrFloats(node: NodeProto, name: string): number[] | undefined {
  return find(node, name)?.floats;
}

/** A STRING attribute decoded as UTF-8, or `fallback` when absent. */
export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = find(node, name);
  return a?.s !== undefined ? new TextDecoder().decode(a.s) : fallback;
}

/** Whether the node carries the attribute at all. */
export function hasAttr(node: NodeProto, name: string): boolean {
  return find(node, name) !== undefined;
}

/** The node's name for messages: its name, or its op type and first output. */
export function nodeLabel(node: NodeProto): string {
  return node.name && node.name.length > 0
    ? `${node.opType} node "${node.name}"`
    : `${node.opType} node producing "${node.output[0] ?? "?"}"`;
}
