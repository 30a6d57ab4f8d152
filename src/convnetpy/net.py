"""Net: a stack of layers built from specs, with forward/backward, parameters, a summary, save and load."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from . import processes
from . import specs as specs_mod
from .errors import ShapeError, SpecError
from .functional.parallel import get_num_threads, single_threaded_blas
from .layers import Dense, Layer, MaxPool1D, MaxPool2D, ReLU
from .losses import HEAD_LOSSES, softmax
from .shape_debugger import is_ragged
from .shards import Replicas, ShardedPass, backward_through, forward_through, shard_slices


@dataclass(frozen=True)
class Param:
    """One learnable array with its gradient and weight-decay multiplier (ConvNetJS's params-and-grads pair).

    ``value`` and ``grad`` are looked up in the layer each time, so they are always the arrays the layer
    uses; optimizers update ``value`` in place.
    """

    name: str  # "3.weight": layer index and PyTorch parameter name
    layer: Layer
    key: str

    @property
    def value(self) -> np.ndarray:
        return self.layer.params[self.key]

    @property
    def grad(self) -> np.ndarray:
        return self.layer.grads[self.key]

    @property
    def decay(self) -> float:
        return self.layer.decay[self.key]


class Net:
    """A feed-forward net: ``Net(specs)`` from a list of layer specs, or ``Net(layers, input_shape=...)``.

    ``forward(x)`` maps a batch (N, *input_shape) to scores (N, K) (logits for a softmax head);
    ``backward(dscores)`` fills every layer's grads; ``loss(scores, labels)`` applies the head's loss.
    """

    def __init__(self, specs_or_layers: Sequence, *, input_shape: Sequence[int] | None = None,
                 head: str | None = None, rng: np.random.Generator | None = None, seed: int | None = None,
                 dtype=np.float32) -> None:
        if rng is not None and seed is not None:
            raise ValueError("Net: give seed or rng, not both")
        if rng is None:
            rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"Net: dtype must be float32 or float64, got {self.dtype}")
        items = list(specs_or_layers) if isinstance(specs_or_layers, (list, tuple)) else None
        if items and all(isinstance(item, Layer) for item in items):
            self._from_layers(items, input_shape, head)
        else:
            if input_shape is not None or head is not None:
                raise SpecError("Net: input_shape and head come from the specs; pass them only with layer objects")
            self._specs, self.layers, self.input_shape, self.head = specs_mod.build(specs_or_layers, rng, self.dtype)
        self.output_shape = self._infer_output_shape()
        self._order = self._execution_order()
        self._replicas = Replicas()  # per-shard gradients and scratch buffers, kept between steps
        self._sharded: ShardedPass | None = None  # the last training forward pass, when it ran in shards

    def _execution_order(self) -> list[int]:
        """Layer indices in the order forward runs them: each ReLU followed by a max pool runs after it.

        Max pooling commutes with ReLU (both are monotonic: relu(max(x)) = max(relu(x))), and the gradient
        reaches the same input positions either way, so pooling first is exact, and the ReLU then works
        on a quarter of the values, forward and backward. Each layer still runs its own code.
        """
        order, i = [], 0
        while i < len(self.layers):
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if isinstance(self.layers[i], ReLU) and isinstance(nxt, (MaxPool1D, MaxPool2D)):
                order += [i + 1, i]
                i += 2
            else:
                order.append(i)
                i += 1
        return order

    def _from_layers(self, layers: list[Layer], input_shape, head) -> None:
        if input_shape is None:
            raise SpecError("Net: a net built from layer objects needs input_shape=(C, H, W), (C, L) or (D,)")
        if head is not None and head not in specs_mod.HEADS:
            raise SpecError(f"Net: head must be one of {specs_mod.HEADS} or None, got {head!r}")
        if head is not None and not isinstance(layers[-1], Dense):
            raise SpecError(f"Net: a {head} head needs a Dense last layer to compute its scores")
        for i, layer in enumerate(layers):
            for name, value in (*layer.params.items(), *layer.buffers.items()):
                if value.dtype != self.dtype:
                    raise TypeError(f"Net: layer {i} ({type(layer).__name__}) holds {value.dtype} {name!r} but the "
                                    f"net's dtype is {self.dtype}; build the layers with dtype={self.dtype} or "
                                    f"pass dtype=np.{value.dtype} to Net")
        self.layers, self.input_shape, self.head = layers, tuple(int(d) for d in input_shape), head
        self._specs = None  # derived on demand from the layers

    def _infer_output_shape(self) -> tuple[int, ...]:
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.output_shape(shape)
            except ShapeError as e:
                raise SpecError(f"layer {i} ({type(layer).__name__}) on input {list(shape)}: {e}") from None
        return shape

    # -- specs ---------------------------------------------------------------------------------------
    def specs(self) -> list[dict]:
        """The net as a JSON-serialisable spec list; ``Net(net.specs())`` rebuilds the same architecture."""
        if self._specs is not None:
            return copy.deepcopy(self._specs)  # the caller may edit nested lists (shape, size) freely
        layer_specs, shape = [], self.input_shape
        for layer in self.layers:
            spec = layer.spec()
            if spec["type"] in ("conv", "pool") and is_ragged(layer, shape):
                spec["ragged"] = True  # the layer floors its output size; strict spec building must too
            layer_specs.append(spec)
            shape = layer.output_shape(shape)
        if self.head is not None:
            last = layer_specs.pop()
            size_key = "outputs" if self.head == "regression" else "classes"
            layer_specs.append({"type": self.head, size_key: last["neurons"]})
        return [{"type": "input", "shape": list(self.input_shape)}, *layer_specs]

    # -- computing -----------------------------------------------------------------------------------
    def _check_input(self, x: np.ndarray) -> None:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"Net.forward expects a NumPy array, got {type(x).__name__}")
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"Net.forward expects float32 or float64 input, got {x.dtype} "
                            "(convert images to floats first, e.g. x.astype(np.float32) / 255)")
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            expected = ", ".join(map(str, ("N", *self.input_shape)))
            raise ShapeError(f"Net expects input of shape ({expected}), got {tuple(x.shape)}")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x (N, *input_shape) -> scores (N, *output_shape). ``training`` keeps caches for ``backward``.

        Input of the other float type is cast to the net's dtype, so float64 data never silently turns a
        float32 net's computation into float64 (and float32 data keeps a float64 gradient check exact).
        A large batch runs as shards; in inference mode, with more than one thread, in helper processes
        (``convnetpy.processes``), with the same numbers.
        """
        self._check_input(x)
        x = x.astype(self.dtype, copy=False)
        if training:
            self._sharded = None
        shards = shard_slices(len(x), self.layers)
        if shards is None:
            with single_threaded_blas():  # convnetpy's threads do the parallel work (functional.parallel)
                return forward_through(self.layers, self._order, x, training)
        # a large batch: shards side by side on the threads (convnetpy.shards), for inference in helper processes
        helpers = 0 if training else self._helper_count(shards)
        with single_threaded_blas(), processes.borrowed(helpers) as helpers:
            sharded = ShardedPass(self._replicas.make(self.layers, len(shards)), shards, self._order)
            if training:
                self._sharded = sharded
            return sharded.forward(x, training, helpers, self.layers)

    def _helper_count(self, shards: list[slice]) -> int:
        """Helper processes for a pass over ``shards``: one per thread but this one (``convnetpy.processes``)."""
        return min(get_num_threads(), len(shards)) - 1 if processes.usable(self.layers) else 0

    def backward(self, dscores: np.ndarray, input_grad: bool = False) -> np.ndarray | None:
        """Backpropagate dscores (N, *output_shape) through every layer, filling their grads.

        Returns the input gradient only when ``input_grad`` is True (the first layer then skips its col2im).
        """
        with single_threaded_blas():
            if self._sharded is not None:
                return self._sharded.backward(dscores, self.layers, input_grad)
            return backward_through(self.layers, self._order, dscores, input_grad)

    def loss(self, scores: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        """The head's loss and dscores: softmax cross-entropy, multiclass hinge (svm) or MSE (regression)."""
        if self.head is None:
            raise SpecError("Net.loss: this net has no loss head (end the specs with softmax, svm or regression)")
        return HEAD_LOSSES[self.head](scores, targets)

    def backprop(self, x: np.ndarray, targets: np.ndarray) -> float:
        """One training pass: forward (training mode), the head's loss, backward. Returns the loss."""
        return self.train_step(x, targets)[0]

    def train_step(self, x: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        """``backprop`` that also returns the scores (N, *output_shape), e.g. to count correct predictions.

        A batch cut into shards runs each shard's forward pass, loss (``Net.loss``, once per shard) and backward
        pass as one task, so the threads meet once per step instead of twice: 0.5-4% of a step on two threads
        (both nets, batch 32 and 64, alternating with the separate passes in one process). With more than one
        thread set, helper processes run all shards but this thread's (``convnetpy.processes``): the same
        numbers, without sharing one GIL.
        """
        self._check_input(x)
        shards = shard_slices(len(x), self.layers)
        if shards is None or self.head is None or np.shape(targets)[:1] != (len(x),):  # the loss names bad targets
            scores = self.forward(x, training=True)
            loss, dscores = self.loss(scores, targets)
            self.backward(dscores)
            return loss, scores
        x = x.astype(self.dtype, copy=False)
        self._sharded = None  # nothing is left for a separate backward()
        helpers = self._helper_count(shards) if type(self).loss is Net.loss else 0
        with single_threaded_blas(), processes.borrowed(helpers) as helpers:
            sharded = ShardedPass(self._replicas.make(self.layers, len(shards)), shards, self._order)
            return sharded.train(x, np.asarray(targets), self.loss, self.layers, helpers, self.head)

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, K) of a softmax head, computed in inference mode, batch by batch."""
        scores = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return softmax(np.concatenate(scores)) if scores else np.zeros((0, *self.output_shape), self.dtype)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Most likely class per example: (N,) integers."""
        scores = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(scores).argmax(axis=1) if scores else np.zeros(0, dtype=np.intp)

    # -- parameters ----------------------------------------------------------------------------------
    def params(self) -> list[Param]:
        """Every learnable array with its gradient and weight-decay multiplier, in layer order."""
        return [Param(f"{i}.{key}", layer, key) for i, layer in enumerate(self.layers) for key in layer.params]

    def num_params(self) -> int:
        return sum(p.value.size for p in self.params())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer, keyed "<layer index>.<name>" (copies)."""
        state = {}
        for i, layer in enumerate(self.layers):
            for store in (layer.params, layer.buffers):
                state.update({f"{i}.{k}": v.copy() for k, v in store.items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays from ``state`` into the net in place; names and shapes must match exactly."""
        expected = {f"{i}.{k}": (layer, store, k) for i, layer in enumerate(self.layers)
                    for store in (layer.params, layer.buffers) for k in store}
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"state does not fit this net: missing {missing}, unexpected {unexpected}")
        for name, (_, store, k) in expected.items():
            value = np.asarray(state[name])
            if value.shape != store[k].shape:
                raise ValueError(f"state {name!r} has shape {value.shape}, the net expects {store[k].shape}")
            store[k][...] = value

    def astype(self, dtype) -> Net:
        """Cast every parameter, gradient and buffer (e.g. to float64 for gradient checks); returns self."""
        self.dtype = np.dtype(dtype)
        for layer in self.layers:
            layer.astype(self.dtype)
        return self

    # -- reporting and files ---------------------------------------------------------------------------
    def summary(self) -> str:
        from .summary import summary

        return summary(self)

    def save(self, path) -> None:
        """Write specs, parameters and buffers to one ``.npz`` file, atomically."""
        from .serialization import save_net

        save_net(self, path)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = ",\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Net(input_shape={self.input_shape}, head={self.head!r},\n{inner}\n)"
