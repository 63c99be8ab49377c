"""Crafted ONNX files for tests/bad_inputs/models_break10.test.ts (issue 10 break test, F1 bypass).

onnxruntime's C++ protobuf keeps only the low 32 bits of a field tag, so a tag written as a 5-byte
varint with bit 32 set (0xaa 0x80 0x80 0x80 0x10 = 2^32 + 0x2a) is, to onnxruntime, field 5 with
wire type 2 (GraphProto.initializer, NodeProto.attribute, AttributeProto.t), while a reader that
decodes the full width sees an unknown field 2^29 + 5. Each file hides a tensor whose external data
is `secret.txt` (no file is supplied) behind such tags.

Run with the Debian python (onnx 1.12):  /usr/bin/python3 tests/bad_inputs/make_break10_fixtures.py
"""
import os
import numpy as np
import onnx
from onnx import TensorProto as T, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
os.makedirs(OUT, exist_ok=True)


def v(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag5(field, wire):
    """5-byte tag varint of (field << 3 | wire) + 2**32."""
    return v(((field << 3) | wire) + (1 << 32))


def entry(k, val):
    return onnx.StringStringEntryProto(key=k, value=val).SerializeToString()


def secret_tensor(name="secret"):
    t = T(name=name, data_type=T.UINT8, dims=[32], data_location=T.EXTERNAL)
    for k, val in (("location", "secret.txt"), ("length", "32")):
        e = t.external_data.add()
        e.key, e.value = k, val
    return t


c = lambda n, a: numpy_helper.from_array(np.array(a), n)
inp = helper.make_tensor_value_info("latent_sample", T.FLOAT, [None, 4, 16, 16])
out = helper.make_tensor_value_info("sample", T.FLOAT, None)
nodes = [helper.make_node("Cast", ["secret"], ["f"], to=T.FLOAT),
         helper.make_node("Mul", ["f", "s"], ["g"]), helper.make_node("Sub", ["g", "one"], ["h"]),
         helper.make_node("Pad", ["h", "pads"], ["p"]), helper.make_node("Reshape", ["p", "shape"], ["img"]),
         helper.make_node("ReduceMean", ["latent_sample"], ["m"], axes=[1, 2, 3], keepdims=1),
         helper.make_node("Mul", ["m", "zero"], ["m0"]), helper.make_node("Add", ["img", "m0"], ["sample"])]
inits = [c("s", np.float32(2 / 255)), c("one", np.float32(1)), c("zero", np.float32(0)),
         c("pads", np.int64([64 * 64 - 32, 2 * 64 * 64])), c("shape", np.int64([1, 3, 64, 64]))]


def model_bytes(graph_bytes):
    m = helper.make_model(helper.make_graph([], "x", [], []), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    m.ClearField("graph")
    return m.SerializeToString() + b"\x3a" + v(len(graph_bytes)) + graph_bytes


def write(name, b):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b)


# (a) graph variant: the whole initializer sits under a 5-byte GraphProto.initializer tag.
g = helper.make_graph(nodes, "evil", [inp], [out], inits).SerializeToString()
tb = secret_tensor().SerializeToString()
write("b10_tag5_graph.onnx", model_bytes(g + tag5(5, 2) + v(len(tb)) + tb))

# (b) in-tensor variant: the initializer is visible, its external_data (13) and data_location (14)
#     are under 5-byte tags.
t = T(name="secret", data_type=T.UINT8, dims=[32]).SerializeToString()
for k, val in (("location", "secret.txt"), ("length", "32")):
    e = entry(k, val)
    t += tag5(13, 2) + v(len(e)) + e
t += tag5(14, 0) + b"\x01"
write("b10_tag5_in_tensor.onnx", model_bytes(g + b"\x2a" + v(len(t)) + t))

# (c) node-attribute variant: `secret` comes from a Constant node whose `value` attribute sits
#     under a 5-byte NodeProto.attribute tag, and whose tensor sits under a 5-byte
#     AttributeProto.t tag.
attr = helper.make_attribute("value", secret_tensor())
ab = attr.SerializeToString()
a_name_type = onnx.AttributeProto(name="value", type=onnx.AttributeProto.TENSOR).SerializeToString()
hidden_attr = a_name_type + tag5(5, 2) + v(len(tb)) + tb
const = helper.make_node("Constant", [], ["secret"]).SerializeToString()
const += tag5(5, 2) + v(len(hidden_attr)) + hidden_attr
g2 = helper.make_graph(nodes, "evil", [inp], [out], inits).SerializeToString()
write("b10_tag5_attribute.onnx", model_bytes(b"\x0a" + v(len(const)) + const + g2))

# (d) over-long (non-canonical) but < 2^32 tag: 0xaa 0x80 0x00 is 0x2a written in 3 bytes.
write("b10_overlong_tag.onnx", model_bytes(g + b"\xaa\x80\x00" + v(len(tb)) + tb))

# (e) a location that is not UTF-8 (0xff) and one with a leading BOM: a lossy or BOM-stripping
#     decode would name a different file than onnxruntime opens.
for name, loc in (("b10_location_not_utf8.onnx", b"secret.txt\xff"),
                  ("b10_location_bom.onnx", b"\xef\xbb\xbfsecret.txt")):
    e = b"\x0a\x08location\x12" + v(len(loc)) + loc
    t = T(name="secret", data_type=T.UINT8, dims=[32], data_location=T.EXTERNAL).SerializeToString()
    t += b"\x6a" + v(len(e)) + e
    write(name, model_bytes(g + b"\x2a" + v(len(t)) + t))

# (f) external data with a bad range: offset/length past the supplied file, and a non-numeric
#     length; the test supplies 32 bytes as `w.bin`.
for name, off, ln in (("b10_extdata_past_end.onnx", "16", "32"), ("b10_extdata_bad_length.onnx", "0", "-1")):
    t = T(name="weights", data_type=T.UINT8, dims=[32], data_location=T.EXTERNAL)
    for k, val in (("location", "w.bin"), ("offset", off), ("length", ln)):
        e = t.external_data.add()
        e.key, e.value = k, val
    g3 = helper.make_graph([helper.make_node("Identity", ["weights"], ["y"])], "range", [],
                           [helper.make_tensor_value_info("y", T.UINT8, [32])], [t])
    m = helper.make_model(g3, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    write(name, m.SerializeToString())
print("ok")
