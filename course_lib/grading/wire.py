"""What travels between the grader and a learner's sandboxed kernel ("How to use this course",
"Grading"): the test inputs of a check going in, the learner's outputs coming back.

Values become plain JSON: tensors and NumPy arrays as dtype, shape and base64 bytes, torch
generators as their state, dicts, lists, tuples, numbers, strings, None. Anything else comes back
as an :class:`Opaque` stand-in that keeps only its type's name, so a check can say "got <type>".
Nothing is ever unpickled: the grader only reads numbers and bytes from the kernel.

The kernel runs this same file (its source is sent in as a cell), so both sides share one format.
"""
import base64
import json

import numpy as np
import torch

TENSOR, ARRAY, GENERATOR, TUPLE, DICT, OTHER = "__tensor__", "__ndarray__", "__generator__", "__tuple__", \
    "__dict__", "__opaque__"


class Opaque:
    """A value of a type the wire does not carry; ``type(value).__name__`` is the original's."""

    def __repr__(self):
        return f"<{type(self).__name__}>"


def opaque(type_name: str) -> Opaque:
    name = type_name if type_name.isidentifier() else "object"
    return type(name, (Opaque,), {})()


def tensor_bytes(t: torch.Tensor) -> str:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return base64.b64encode(flat.view(torch.uint8).numpy().tobytes()).decode()


def encode(value):
    """``value`` as JSON-able data (see the module's docstring)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return {TENSOR: str(value.dtype)[6:], "shape": list(value.shape), "data": tensor_bytes(value)}
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        return {ARRAY: array.dtype.str, "shape": list(array.shape), "scalar": isinstance(value, np.generic),
                "data": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()}
    if isinstance(value, torch.Generator):
        return {GENERATOR: encode(value.get_state())}
    if isinstance(value, (list, tuple)):
        items = [encode(v) for v in value]
        return {TUPLE: items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {DICT: [[encode(k), encode(v)] for k, v in value.items()]}
    return {OTHER: type(value).__name__}


def decode(data):
    """The value :func:`encode` turned into ``data``."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if TENSOR in data:
        dtype = getattr(torch, str(data[TENSOR]), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"not a torch dtype: {data[TENSOR]!r}")
        raw = bytearray(base64.b64decode(data["data"]))
        flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        return flat.view(dtype).reshape(data["shape"]).clone()
    if ARRAY in data:
        array = np.frombuffer(base64.b64decode(data["data"]), dtype=np.dtype(data[ARRAY])).reshape(data["shape"])
        return array[()] if data["scalar"] else array.copy()
    if GENERATOR in data:
        generator = torch.Generator()
        generator.set_state(decode(data[GENERATOR]))
        return generator
    if TUPLE in data:
        return tuple(decode(v) for v in data[TUPLE])
    if DICT in data:
        return {decode(k): decode(v) for k, v in data[DICT]}
    return opaque(str(data.get(OTHER, "object")))


def dumps(value) -> str:
    return json.dumps(encode(value))


def loads(text: str):
    return decode(json.loads(text))
