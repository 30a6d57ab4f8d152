"""The shape debugger: window arithmetic of conv and pool layers, and fixes to propose when it does not fit.

Along one axis a window of K taps with dilation D spans D*(K-1) + 1 inputs; sliding it with stride S over an
input of size N padded by P on both sides gives

    out = (N - D*(K-1) - 1 + 2P) / S + 1        (pooling: D = 1, so (N - K + 2P) / S + 1)

The layer classes floor this, as PyTorch does, so a window that does not tile the input leaves the last
``(N - D*(K-1) - 1 + 2P) % S`` padded positions unread (a "ragged" edge); only an empty output is an error.
Nets built from specs are stricter (see ``specs.build``): a fraction is an error unless the spec says
``"ragged": true``. The messages here show the arithmetic with the layer's numbers and the nearest
paddings, strides, dilations or kernel sizes that fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import ShapeError

# What each argument is called in a spec and in a layer's constructor.
SPEC_NAMES = {"pad": "pad", "stride": "stride", "dilation": "dilation", "size": "size"}
LAYER_NAMES = {"pad": "padding", "stride": "stride", "dilation": "dilation", "size": "kernel_size"}


@dataclass(frozen=True)
class Window:
    """One axis of a conv or pool layer: input size n, kernel k, stride s, padding p per side, dilation d.

    ``stride_is_size``: a pooling spec without a stride uses the kernel size as stride, so changing the
    size changes the stride too.
    """

    n: int
    k: int
    s: int
    p: int
    d: int = 1
    pool: bool = False
    stride_is_size: bool = False

    @property
    def numerator(self) -> int:
        """N - D*(K-1) - 1 + 2P: how far the window can slide; negative when it does not fit at all."""
        return self.n - self.d * (self.k - 1) - 1 + 2 * self.p

    @property
    def out(self) -> int:
        """The floored output size (PyTorch's), <= 0 when empty."""
        return self.numerator // self.s + 1

    @property
    def leftover(self) -> int:
        """Padded input positions past the last window (0 when the windows tile the input exactly)."""
        return self.numerator % self.s

    def fits(self, whole: bool) -> bool:
        """A non-empty output (a whole number too if ``whole``), with a pool window wider than its padding."""
        if self.pool and 2 * self.p > self.k:
            return False
        return self.numerator >= 0 and (not whole or self.leftover == 0)

    def arithmetic(self, dim: str, op: str) -> str:
        """The formula, then the same with this axis's numbers; ``op`` is "/" or "//"."""
        if self.pool:
            return f"({dim} - K + 2P) / S + 1 = ({self.n} - {self.k} + 2*{self.p}) {op} {self.s} + 1"
        return (f"({dim} - D*(K-1) - 1 + 2P) / S + 1 = "
                f"({self.n} - {self.d}*({self.k}-1) - 1 + {2 * self.p}) {op} {self.s} + 1")


def _number(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def _nearest(current: int, candidates, most: int = 2) -> list[int]:
    """Up to ``most`` candidates closest to ``current`` (ties: the smaller), in increasing order."""
    return sorted(sorted((c for c in candidates if c != current), key=lambda c: (abs(c - current), c))[:most])


def _show(values: list[int], brackets: str) -> str:
    """One number if every axis has it, else the per-axis list: "1", "[1, 0]" (spec) or "(1, 0)" (layer)."""
    return str(values[0]) if len(set(values)) == 1 else brackets[0] + ", ".join(map(str, values)) + brackets[1]


def _with(w: Window, key: str, v: int) -> Window:
    """Window ``w`` with one spec key changed (a pool without a stride also changes its stride with its size)."""
    if key == "pad":
        return replace(w, p=v)
    if key == "stride":
        return replace(w, s=v, stride_is_size=False)
    if key == "dilation":
        return replace(w, d=v)
    return replace(w, k=v, s=v if w.stride_is_size else w.s)


def _candidates(w: Window, key: str) -> range:
    if key == "pad":  # a pool's padding is at most half its window
        return range(w.k // 2 + 1 if w.pool else w.p + w.d * (w.k - 1) + 2 * w.s + 1)
    if key == "stride":  # strides longer than the window skip inputs: not worth proposing
        return range(1, max(w.s, w.d * (w.k - 1) + 1) + 1)
    if key == "dilation":
        return range(1, w.d)
    return range(2 if w.pool else 1, w.n + 2 * w.p + 1)  # a 1-wide pool window would copy its input


def suggest(ws: list[Window], axis: int, current: dict[str, tuple[int, ...]], whole: bool,
            names: dict[str, str], brackets: str = "[]") -> str:
    """Nearest fixes for axis ``axis`` of a layer with windows ``ws``, e.g. "use pad 1 or 3, or stride 1".

    ``current`` holds the layer's per-axis values under the keys "pad", "stride", "dilation" and "size".
    A value equal on every axis is proposed as one number when that number fits every axis; otherwise the
    fix is shown as the full per-axis list, changing every failing axis when that key can fix them all
    (else just this one) and keeping the other axes' values. ``whole``: the output must also be a whole
    number (spec-built nets without "ragged"). Kernel sizes are proposed only when no padding fits or the
    output is empty. A conv is also offered pad "same" (output ceil(N / S), never
    ragged). Returns "" when nothing fits.
    """
    w = ws[axis]
    failing = [i for i, x in enumerate(ws) if not x.fits(whole)]
    keys = ["pad"] + (["stride"] if w.numerator >= 0 else []) + (["dilation"] if w.d > 1 else []) + ["size"]
    parts = []
    for key in keys:
        if key == "size" and w.numerator >= 0 and any(k == "pad" for k, _ in parts):
            break
        values = current[key]
        if len(ws) > 1 and len(set(values)) == 1:
            same = _nearest(values[0], [v for v in _candidates(w, key)
                                        if all(_with(x, key, v).fits(whole) for x in ws)])
            if same:
                parts.append((key, [str(v) for v in same]))
                continue
        # Per axis: fix every failing axis at once if this key can, else at least this one.
        nearest = {i: _nearest(values[i], [v for v in _candidates(ws[i], key)
                                           if _with(ws[i], key, v).fits(whole)]) for i in failing}
        if not all(nearest.values()):
            nearest = {axis: nearest[axis]}
        fixes = []
        for j in range(max(map(len, nearest.values()))):
            full = list(values)
            for i, found in nearest.items():
                full[i] = found[min(j, len(found) - 1)]
            if _show(full, brackets) not in fixes:
                fixes.append(_show(full, brackets))
        if fixes:
            parts.append((key, fixes))
    if not w.pool:  # 'same' always fits: output ceil(N / S)
        same = '"same"' if brackets == "[]" else "'same'"
        if parts and parts[0][0] == "pad":
            parts[0][1].append(same)
        else:
            parts.insert(0, ("pad", [same]))
    return "use " + ", or ".join(f"{names[key]} " + " or ".join(vals) for key, vals in parts) if parts else ""


def empty_message(cls_name: str, dim: str, w: Window, fixes: str) -> str:
    """"Conv2D: output H would be 0 (empty): <arithmetic> = 0; <fixes>"."""
    tail = fixes or ("use a smaller window or a larger input" if w.pool
                     else "use a smaller kernel, more padding or a larger input")
    return f"{cls_name}: output {dim} would be {w.out} (empty): {w.arithmetic(dim, '//')} = {w.out}; {tail}"


def ragged_message(cls_name: str, dim: str, w: Window, fixes: str) -> str:
    """"Conv1D: output L would be 19.5 (not a whole number): <arithmetic> = 19.5; <fixes>; or add ragged"."""
    value = _number(w.numerator / w.s + 1)
    floor = (f'add "ragged": true to the spec to floor it to {w.out} as PyTorch does, leaving the last '
             f"{w.leftover} of {w.n + 2 * w.p} padded positions unread")
    return (f"{cls_name}: output {dim} would be {value} (not a whole number): {w.arithmetic(dim, '/')} = {value}; "
            + (f"{fixes}; or {floor}" if fixes else floor))


def dim_name(ndim: int, axis: int) -> str:
    return "HW"[axis] if ndim == 2 else "L"


def windows(layer, in_shape: tuple[int, ...], stride_is_size: bool = False) -> list[Window] | None:
    """One Window per spatial axis of a conv or pool layer on examples of shape ``in_shape`` (None for
    'same' padding, whose output is ceil(N / S) by definition and never ragged)."""
    if layer.padding == "same":
        return None
    pool = layer.type == "pool"
    dilation = (1,) * layer.ndim if pool else layer.dilation
    return [Window(n, k, s, p, d, pool, stride_is_size) for n, k, s, p, d in
            zip(in_shape[1:], layer.kernel_size, layer.stride, layer.padding, dilation)]


def _current(layer) -> dict[str, tuple[int, ...]]:
    return {"pad": tuple(layer.padding), "stride": tuple(layer.stride),
            "dilation": tuple(getattr(layer, "dilation", (1,) * layer.ndim)), "size": tuple(layer.kernel_size)}


def check_empty(layer, in_shape: tuple[int, ...]) -> None:
    """Raise ShapeError if a conv or pool layer's output would be empty (layers call this; they floor)."""
    ws = windows(layer, in_shape) or []
    for axis, w in enumerate(ws):
        if w.out < 1:
            fixes = suggest(ws, axis, _current(layer), whole=False, names=LAYER_NAMES, brackets="()")
            raise ShapeError(empty_message(type(layer).__name__, dim_name(layer.ndim, axis), w, fixes))


def check_spec(layer, in_shape: tuple[int, ...], ragged: bool, stride_is_size: bool = False) -> None:
    """The strict rule of spec-built nets: raise ShapeError (named in spec keys) if a conv or pool layer's
    output would be empty, or, unless ``ragged``, not a whole number."""
    ws = windows(layer, in_shape, stride_is_size) or []
    for axis, w in enumerate(ws):
        dim = dim_name(layer.ndim, axis)
        if w.out < 1 or (not ragged and w.leftover):
            fixes = suggest(ws, axis, _current(layer), whole=not ragged, names=SPEC_NAMES)
            make = empty_message if w.out < 1 else ragged_message
            raise ShapeError(make(type(layer).__name__, dim, w, fixes))


def is_ragged(layer, in_shape: tuple[int, ...]) -> bool:
    """True if a conv or pool layer floors a fractional output size on examples of shape ``in_shape``."""
    return any(w.leftover for w in windows(layer, in_shape) or ())
