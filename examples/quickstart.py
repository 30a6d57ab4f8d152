"""Build the ConvNetJS CIFAR-10 net, print its summary, train a few steps, save it and load it back.

    python examples/quickstart.py

The images are synthetic (random 32x32 RGB pictures, each class a different mean colour), so this runs
anywhere in seconds; the dataset readers and the trainer come with `convnetpy train`.
"""

import tempfile
from pathlib import Path

import numpy as np

import convnetpy
from convnetpy.models import cifar10net
from convnetpy.optim import SGD

rng = np.random.default_rng(0)
net = convnetpy.Net(cifar10net(), rng=rng)
print(net.summary())

# 10 classes of synthetic images: noise around a per-class colour.
colours = rng.random((10, 3, 1, 1), dtype=np.float32)
labels = rng.integers(0, 10, 512)
images = (colours[labels] + 0.3 * rng.standard_normal((512, 3, 32, 32), dtype=np.float32)).astype(np.float32)

opt = SGD(net.params(), lr=0.01, momentum=0.9, weight_decay=5e-4)
for step in range(40):
    batch = rng.choice(512, 64, replace=False)
    loss = net.backprop(images[batch], labels[batch])  # forward, softmax cross-entropy, backward
    opt.step()  # the only place weights change
    if step % 10 == 0 or step == 39:
        accuracy = (net.predict(images) == labels).mean()
        print(f"step {step:2d}  loss {loss:.3f}  accuracy {accuracy:.1%}")

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "cifar10net.npz"
    net.save(path)
    again = convnetpy.load(path)
    same = np.array_equal(again.forward(images[:8]), net.forward(images[:8]))
    print(f"saved {path.stat().st_size:,} bytes; reloaded net gives identical scores: {same}")
print("top-3 classes of image 0:", np.argsort(net.predict_proba(images[:1])[0])[::-1][:3], "true:", labels[0])
