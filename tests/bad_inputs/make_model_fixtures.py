"""Crafted ONNX files for tests/bad_inputs/models_*.test.ts (issue 10, model side).

Run with the Debian python (onnx 1.12):  /usr/bin/python3 tests/bad_inputs/make_model_fixtures.py
Every file is a few hundred bytes; the tests build everything else (folders, configs) at test time.
"""
import os
import numpy as np
import onnx
from onnx import TensorProto as T, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
os.makedirs(OUT, exist_ok=True)


def save(m, name):
    m.ir_version = 8
    onnx.save(m, os.path.join(OUT, name))


def external(name, dtype, dims, location, length):
    t = T(name=name, data_type=dtype, dims=dims, data_location=T.EXTERNAL)
    for k, v in (("location", location), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


c = lambda n, a: numpy_helper.from_array(np.array(a), n)

# F1: the case's decoder: paints 32 bytes of `secret.txt` (external data, no path) into the image.
inp = helper.make_tensor_value_info("latent_sample", T.FLOAT, [None, 4, 16, 16])
nodes = [helper.make_node("Cast", ["secret"], ["f"], to=T.FLOAT),
         helper.make_node("Mul", ["f", "s"], ["g"]), helper.make_node("Sub", ["g", "one"], ["h"]),
         helper.make_node("Pad", ["h", "pads"], ["p"]), helper.make_node("Reshape", ["p", "shape"], ["img"]),
         helper.make_node("ReduceMean", ["latent_sample"], ["m"], axes=[1, 2, 3], keepdims=1),
         helper.make_node("Mul", ["m", "zero"], ["m0"]), helper.make_node("Add", ["img", "m0"], ["sample"])]
inits = [external("secret", T.UINT8, [32], "secret.txt", 32), c("s", np.float32(2 / 255)),
         c("one", np.float32(1)), c("zero", np.float32(0)),
         c("pads", np.int64([64 * 64 - 32, 2 * 64 * 64])), c("shape", np.int64([1, 3, 64, 64]))]
g = helper.make_graph(nodes, "evil", [inp], [helper.make_tensor_value_info("sample", T.FLOAT, None)], inits)
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "f1_evil_decoder.onnx")

# F1 variants: the external tensor hidden where a codec that skips fields would not look.
x = helper.make_tensor_value_info("x", T.FLOAT, [4])
y = helper.make_tensor_value_info("y", T.FLOAT, [4])
# (a) inside a model-local function's Constant
fn = helper.make_function("local", "AddSecret", ["a"], ["b"],
                          [helper.make_node("Constant", [], ["k"], value=external("k", T.FLOAT, [4], "secret.txt", 16)),
                           helper.make_node("Add", ["a", "k"], ["b"])],
                          [helper.make_opsetid("", 13)])
g = helper.make_graph([helper.make_node("AddSecret", ["x"], ["y"], domain="local")], "fn", [x], [y])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("local", 1)],
                       functions=[fn]), "f1_function_external.onnx")
# (b) the values of a sparse initializer
vals = external("sp", T.FLOAT, [2], "secret.txt", 8)
idx = numpy_helper.from_array(np.array([0, 2], dtype=np.int64), "sp_idx")
sp = helper.make_sparse_tensor(vals, idx, [4])
g = helper.make_graph([helper.make_node("Add", ["x", "sp"], ["y"])], "sparse", [x], [y])
g.sparse_initializer.append(sp)
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "f1_sparse_external.onnx")
# (c) inside a subgraph (If branch) Constant
then_g = helper.make_graph([helper.make_node("Constant", [], ["t"], value=external("t", T.FLOAT, [4], "../secret.txt", 16))],
                           "then", [], [helper.make_tensor_value_info("t", T.FLOAT, [4])])
else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", T.FLOAT, [4])])
cond = helper.make_tensor_value_info("c", T.BOOL, [])
g = helper.make_graph([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], "sub", [cond, x], [y])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "f1_subgraph_external.onnx")

# O29: a UINT64 Constant (uint64_data, TensorProto field 11) feeding Add.
xu = helper.make_tensor_value_info("x", T.UINT64, [2])
yu = helper.make_tensor_value_info("y", T.UINT64, [2])
cu = T(name="c", data_type=T.UINT64, dims=[2], uint64_data=[5, 7])
g = helper.make_graph([helper.make_node("Constant", [], ["c"], value=cu), helper.make_node("Add", ["x", "c"], ["y"])],
                      "u64", [xu], [yu])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), "o29_uint64.onnx")

# O30: a model-local function (ModelProto.functions, field 25).
fn = helper.make_function("local", "MyRelu", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                          [helper.make_opsetid("", 14)])
g = helper.make_graph([helper.make_node("MyRelu", ["x"], ["y"], domain="local")], "fn", [x], [y])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14), helper.make_opsetid("local", 1)],
                       functions=[fn]), "o30_function.onnx")

# Round trip of another unmodelled field: a sparse initializer (GraphProto field 15), inline data.
vals = numpy_helper.from_array(np.array([1.5, -2.0], dtype=np.float32), "sp2")
idx = numpy_helper.from_array(np.array([0, 2], dtype=np.int64), "sp2_idx")
g = helper.make_graph([helper.make_node("Add", ["x", "sp2"], ["y"])], "sparse_inline", [x], [y])
g.sparse_initializer.append(helper.make_sparse_tensor(vals, idx, [4]))
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "o30_sparse_inline.onnx")

# O7: an initializer declaring [2^31, 2^31] floats with 4 bytes of raw_data.
big = T(name="w", data_type=T.FLOAT, dims=[2 ** 31, 2 ** 31], raw_data=b"\0\0\0\0")
g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "o7", [x], [y], [big])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "o7_huge_dims.onnx")

print("wrote", sorted(os.listdir(OUT)))
