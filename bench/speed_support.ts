/**
 * Timing helpers the speed benchmarks share: process CPU time (user + system, which on a shared
 * machine measures this process rather than its neighbours), wall time, and peak resident memory
 * (VmHWM, reset before each call where the kernel allows), with phases interleaved round by round
 * so V8's tier-up and the machine's drift do not favour whichever phase ran last.
 *
 * @module
 */
import process from "node:process";

/** One call's cost. */
export interface Call {
  /** Process CPU ms (user + system). */
  cpu: number;
  /** Wall ms. */
  wall: number;
  /** Peak RSS during the call, MiB (VmHWM after a reset). */
  peak: number;
  /** Peak RSS minus RSS at the start, MiB. */
  above: number;
}

/** A phase's summary over its counted calls. */
export interface Phase {
  /** CPU ms per call: min, median, max. */
  cpuMs: { min: number; median: number; max: number };
  /** Wall ms per call: min, median. */
  wallMs: { min: number; median: number };
  /** Largest peak RSS, MiB. */
  peakMiB: number;
  /** Largest rise of the peak over the RSS at the call's start, MiB. */
  aboveStartMiB: number;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const cpuMsNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function vmHwmMiB(): Promise<number> {
  try {
    const status = await Deno.readTextFile("/proc/self/status");
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

/** Resets VmHWM to the current RSS; false where the kernel or sandbox refuses. */
export async function resetPeak(): Promise<boolean> {
  try {
    await Deno.writeTextFile("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** One call of `f` after resetting the peak. */
export async function once(f: () => Promise<unknown> | unknown): Promise<Call> {
  await resetPeak();
  const start = Deno.memoryUsage().rss / 2 ** 20;
  const c = cpuMsNow();
  const t = performance.now();
  await f();
  const wall = performance.now() - t;
  const cpu = cpuMsNow() - c;
  const peak = await vmHwmMiB();
  return { cpu, wall, peak, above: peak - start };
}

/** Summary of calls. */
export function summarise(calls: readonly Call[]): Phase {
  const cpu = calls.map((c) => c.cpu);
  const wall = calls.map((c) => c.wall);
  return {
    cpuMs: { min: Math.min(...cpu), median: median(cpu), max: Math.max(...cpu) },
    wallMs: { min: Math.min(...wall), median: median(wall) },
    peakMiB: Math.max(...calls.map((c) => c.peak)),
    aboveStartMiB: Math.max(...calls.map((c) => c.above)),
  };
}

/**
 * Runs every phase once per round, `warmup` uncounted rounds then `repeats` counted ones, and
 * summarises each phase.
 */
export async function interleaved<K extends string>(
  phases: Record<K, () => Promise<unknown> | unknown>,
  repeats: number,
  warmup = 1,
): Promise<Record<K, Phase>> {
  const keys = Object.keys(phases) as K[];
  const calls = Object.fromEntries(keys.map((k) => [k, [] as Call[]])) as Record<K, Call[]>;
  for (let r = 0; r < warmup + repeats; r++) {
    for (const k of keys) {
      const c = await once(phases[k]);
      if (r >= warmup) calls[k].push(c);
    }
  }
  return Object.fromEntries(keys.map((k) => [k, summarise(calls[k])])) as Record<K, Phase>;
}

/** Load averages from /proc/loadavg (empty where unreadable). */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(", ");
  } catch {
    return "unknown";
  }
}

/** `x` to `d` decimals. */
export const fx = (x: number, d = 1): string => Number.isFinite(x) ? x.toFixed(d) : "–";
