"""Does the one training loop train exactly as the two loops it replaced? Trains tiny models (a MobileNet student by
KD from a teacher, with and without flips; a TinyDetector by detection KD from a teacher) with whichever edgekit
is on the path and prints a digest of the trained weights and the loss history of each, as JSON:

    git worktree add /tmp/before 5d1c40e      # a commit with detect/train.train_detector
    PYTHONPATH=/tmp/before python benchmarks/loop_identity.py > before.json
    python benchmarks/loop_identity.py > after.json    # equal files: the same training, bit for bit

benchmarks/results/loop_identity.md holds the two outputs.
"""
import hashlib, json, os, tempfile
os.chdir(tempfile.mkdtemp())
import torch
from edgekit.distill import train_loop
from edgekit.distill.losses import KDLoss
from edgekit.models.builders import build_model

def digest(model):
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode()); h.update(v.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]

out = {}
torch.manual_seed(0)
x = torch.rand(96, 3, 32, 32); y = torch.randint(0, 10, (96,))
teacher = build_model({"arch": "mobilenet_v2", "width": 0.5, "num_classes": 10}).eval()
for hflip in (False, True):
    torch.manual_seed(1)
    student = build_model({"arch": "mobilenet_v2", "width": 0.35, "num_classes": 10}); student.train()
    hist = train_loop.train(student, x, y, loss_fn=KDLoss(4.0, 0.7), teacher=teacher, epochs=2, lr=0.05, batch_size=32,
                            seed=3, stage=f"cls{hflip}", hflip=hflip)
    out[f"classify_hflip{hflip}"] = [digest(student), hist]

from edgekit.detect.data import builtin_scenes
from edgekit.detect.losses import DetectionKD
from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector
from edgekit.data.preprocess import PreprocessSpec
data = builtin_scenes(64, splits={"train": 40})
xs = data.images("train", PreprocessSpec((64, 64), (0, 0, 0), (1, 1, 1))) if hasattr(data, "images") and callable(getattr(data, "images")) else data.tensors("train", PreprocessSpec((64, 64), (0, 0, 0), (1, 1, 1)))
split = data.splits["train"]
torch.manual_seed(2)
t = TinyDetector(DetectorSpec(3, width=0.5, neck=32)).eval()
torch.manual_seed(4)
s = TinyDetector(DetectorSpec(3, width=0.35, neck=24)); s.train()
loss = DetectionKD(24, 32, temperature=2.0, gt_weight=0.5, weights={"score_kd": 0.5, "box_imitation": 0.5, "feature": 0.5})
if hasattr(__import__("edgekit.detect.train", fromlist=["x"]), "train_detector"):
    from edgekit.detect.train import train_detector
    hist = train_detector(s, xs, split.boxes, split.labels, num_classes=3, loss_fn=loss, epochs=2, lr=0.02, batch_size=16,
                          seed=5, stage="det", teacher=t, extra_params=list(loss.parameters()))
else:
    from edgekit.detect.train import detection_recipe
    hist = train_loop.train(s, xs, split, loss_fn=loss, teacher=t, epochs=2, lr=0.02, batch_size=16, seed=5, stage="det",
                            recipe=detection_recipe(3))
out["detect"] = [digest(s), hist]
print(json.dumps(out))
