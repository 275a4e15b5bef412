"""The checks and figures that need a GPU, in one run: the canon on CUDA, torch.compile, training speed.

    python benchmarks/bench_gpu.py [--device cuda] [--quick] [--only SECTION ...] [--json FILE]

1. parity: every canon network is compiled from its spec, moved to the
   device, loaded with torchvision's state_dict (strict, batch norms
   randomised) and run in eval mode in fp32 with TF32 off; the largest
   output difference is reported (issue 2 asks for 1e-5) and the static
   shapes are checked against the run.
2. train: the compiled ResNet-50 trains on the device: SGD on one fixed
   batch lowers the loss, and every gradient lives on the device.
3. torch_compile: the compiled ResNet-50 under torch.compile(fullgraph=True)
   in training mode; loss and gradients against eager, and compile time.
4. train_step: a forward+backward step of the compiled ResNet-50 against
   torchvision's with the same weights, interleaved repeats, medians; in fp32
   and in bf16 autocast with channels_last.
5. compiled_train_step: the same in bf16 with both models under torch.compile.
6. trainer: images/s of `cnnspec train` on ResNet-50 (batch 256, bf16,
   channels_last, synthetic images on the device) against a plain loop on
   torchvision's ResNet-50 with the same settings, eager and (not with
   --quick) under torch.compile; with compiled_train_step in the same run,
   also the compiled trainer's rate against the bare compiled step's
   (issue 26 asks for 95%). bench_loader.py --train does the same for an
   image folder.

Each section reports on its own; a failure in one does not stop the rest.
`--device cpu --quick` runs the same code small, to try the script without a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support import CANON, SPECS, assert_static_shapes, randomise_batchnorm  # noqa: E402

import cnnspec  # noqa: E402


def sync(device: str) -> None:
    """Wait for the device's queued work, so that host clocks measure it."""
    if device == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def backend_flags(*, tf32: bool = True, cudnn_benchmark: bool = False) -> Iterator[None]:
    """TF32 and cuDNN autotuning as given inside, as they were after (a failing section too)."""
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = old


@backend_flags(tf32=False)
def parity(device: str, quick: bool) -> dict[str, Any]:
    """Strict load of torchvision's weights and the largest output difference, per canon network."""
    names = ["resnet18", "googlenet"] if quick else list(CANON)
    out: dict[str, Any] = {}
    for name in names:
        canon = CANON[name]
        gen = torch.Generator().manual_seed(0)
        reference = canon.build_torchvision().eval()
        randomise_batchnorm(reference, gen)
        report = cnnspec.check(canon.path)
        model = cnnspec.compile(canon.path).eval()
        model.load_state_dict(reference.state_dict(), strict=True)
        reference.to(device)
        model.to(device)
        x = torch.randn(4, 3, 224, 224, generator=gen).to(device)
        with torch.no_grad():
            expected = reference(x)
            got = assert_static_shapes(report, model, x)
        diff = (got - expected).abs().max().item()
        out[name] = {
            "params": report.total_params,
            "torchvision_params": sum(p.numel() for p in reference.parameters()),
            "max_abs_diff": diff,
            "ok": diff <= 1e-5 and report.total_params == canon.params,
        }
        print(f"  {name:10} params {report.total_params:>12,}  max|diff| {diff:.3g}", flush=True)
        del reference, model
    return {"networks": out, "ok": all(v["ok"] for v in out.values())}


def train(device: str, quick: bool) -> dict[str, Any]:
    """SGD on one fixed batch: the loss must fall and every gradient must live on the device."""
    torch.manual_seed(0)
    size = 64 if quick else 224
    gm = cnnspec.compile(SPECS / "resnet50.cnn", input_shape=(3, size, size)).to(device).train()
    x = torch.randn(16, 3, size, size, device=device)
    y = torch.randint(0, 1000, (16,), device=device)
    opt = torch.optim.SGD(gm.parameters(), lr=0.01)
    losses = []
    for _ in range(8):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(gm(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    on_device = all(p.grad is not None and p.grad.device.type == device for p in gm.parameters())
    print(f"  losses {[round(v, 3) for v in losses]}; grads on {device}: {on_device}", flush=True)
    return {"losses": losses, "grads_on_device": on_device, "ok": on_device and losses[-1] < losses[0]}


@backend_flags(tf32=False)
def compiled_step(device: str, quick: bool) -> dict[str, Any]:
    """torch.compile(fullgraph=True) of the training forward+backward, against eager and a float64 reference.

    A freshly initialised ResNet-50's gradient is ill-conditioned: eager fp32
    itself lands a few per cent from float64. So the verdict asks that the
    compiled gradient be about as close to float64 as eager's is.
    """
    torch.manual_seed(0)
    size = 64 if quick else 224
    eager = cnnspec.compile(SPECS / "resnet50.cnn", input_shape=(3, size, size)).to(device).train()
    other = copy.deepcopy(eager)
    exact = copy.deepcopy(eager).double()
    compiled = torch.compile(other, fullgraph=True)
    x = torch.randn(8, 3, size, size, device=device)
    y = torch.randint(0, 1000, (8,), device=device)

    def step(model: Callable[..., torch.Tensor], params: torch.nn.Module, x: torch.Tensor) -> tuple[float, Any]:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten().double() for p in params.parameters()])

    sync(device)
    t = time.perf_counter()
    loss_compiled, g_compiled = step(compiled, other, x)
    sync(device)
    compile_s = time.perf_counter() - t
    loss_eager, g_eager = step(eager, eager, x)
    loss_exact, g_exact = step(exact, exact, x.double())

    def off(g: torch.Tensor) -> float:
        return ((g - g_exact).norm() / g_exact.norm()).item()

    print(
        f"  first call {compile_s:.1f} s; loss eager {loss_eager:.6f} compiled {loss_compiled:.6f} "
        f"float64 {loss_exact:.6f}; gradient off float64 by {off(g_eager):.2e} eager, "
        f"{off(g_compiled):.2e} compiled",
        flush=True,
    )
    return {
        "compile_s": compile_s,
        "loss_eager": loss_eager,
        "loss_compiled": loss_compiled,
        "loss_float64": loss_exact,
        "grad_rel_err_eager": off(g_eager),
        "grad_rel_err_compiled": off(g_compiled),
        "ok": abs(loss_compiled - loss_exact) <= 1e-4 * abs(loss_exact) and off(g_compiled) <= 2 * off(g_eager) + 1e-6,
    }


def timed_steps(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, bf16: bool) -> float:
    """Seconds per forward+backward step, averaged over `steps`."""
    device = x.device.type
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
    sync(device)
    return (time.perf_counter() - t) / steps


def race(device: str, quick: bool, batch: int, bf16: bool, compile_: bool) -> dict[str, Any]:
    """Step time of the compiled ResNet-50 against torchvision's with the same weights: interleaved
    repeats, medians. bf16 runs in autocast with channels_last; compile_ puts both under torch.compile."""
    import torchvision

    size = 64 if quick else 224
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    tv = torchvision.models.resnet50().to(device)
    ours = cnnspec.compile(SPECS / "resnet50.cnn", input_shape=(3, size, size)).to(device)
    ours.load_state_dict(tv.state_dict(), strict=True)
    tv.to(memory_format=fmt).train()
    ours.to(memory_format=fmt).train()
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device=device)
    models = {"cnnspec": ours, "torchvision": tv}
    if compile_:
        models = {k: torch.compile(m) for k, m in models.items()}
    warm = {}
    for label, m in models.items():
        t = time.perf_counter()
        timed_steps(m, x, y, 3, bf16)  # compilation, cuDNN autotuning, the allocator
        warm[label] = time.perf_counter() - t
    steps, repeats = (1, 3) if quick else (5, 12)
    mine, theirs = [], []
    for _ in range(repeats):
        mine.append(timed_steps(models["cnnspec"], x, y, steps, bf16))
        theirs.append(timed_steps(models["torchvision"], x, y, steps, bf16))
    a, b = statistics.median(mine), statistics.median(theirs)
    label = ("compiled " if compile_ else "") + ("bf16_channels_last" if bf16 else "fp32")
    print(
        f"  {label:27} batch {batch:3}: cnnspec {a * 1e3:8.2f} ms  torchvision {b * 1e3:8.2f} ms  "
        f"ratio {b / a:.3f}  (first three steps {warm['cnnspec']:.1f} s / {warm['torchvision']:.1f} s)",
        flush=True,
    )
    return {"batch": batch, "cnnspec_step_s": a, "torchvision_step_s": b, "speed_ratio": b / a, "warmup_s": warm}


@backend_flags(cudnn_benchmark=True)
def train_step(device: str, quick: bool) -> dict[str, Any]:
    """Eager step time, fp32 and bf16 with channels_last."""
    settings = [("fp32", 4, False)] if quick else [("fp32", 64, False), ("bf16_channels_last", 256, True)]
    out: dict[str, Any] = {label: race(device, quick, batch, bf16, False) for label, batch, bf16 in settings}
    out["ok"] = all(v["speed_ratio"] >= 0.98 for v in out.values())
    return out


@backend_flags(cudnn_benchmark=True)
def compiled_train_step(device: str, quick: bool) -> dict[str, Any]:
    """Step time with both models under torch.compile (default mode), bf16 with channels_last."""
    out = race(device, quick, 4 if quick else 256, True, True)
    out["ok"] = out["speed_ratio"] >= 0.98
    return out


def plain_loop_images_per_s(
    device: str, batch: int, steps: int, size: int, bf16: bool, compile_: bool = False
) -> float:
    """images/s of a hand-written training loop on torchvision's ResNet-50, its second epoch.

    The same settings as the trainer's run below: SGD, autocast and channels_last when bf16,
    synthetic images held on the device and gathered there, as the trainer does with them.
    """
    import torchvision

    from cnnspec.train.data import synthetic

    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = torchvision.models.resnet50().to(device).to(memory_format=fmt).train()
    data = synthetic((3, size, size), 1000, size=batch * steps, seed=0).train
    images, labels = data.images.to(device), data.labels.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-5)
    step_model = torch.compile(model) if compile_ else model

    def epoch() -> float:
        order = torch.randperm(len(labels), device=device)
        sync(device)
        t = time.perf_counter()
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            x = images.index_select(0, idx % len(images)).to(memory_format=fmt)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(step_model(x), labels.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        return steps * batch / (time.perf_counter() - t)

    epoch()  # cuDNN autotuning, the allocator
    return epoch()


@backend_flags(cudnn_benchmark=True)
def trainer(device: str, quick: bool) -> dict[str, Any]:
    """images/s of `cnnspec train` (ResNet-50, synthetic data; bf16 and channels_last on CUDA), its second
    epoch, against the plain loop above; eager, and compiled unless quick."""
    import io
    import tempfile

    batch, steps, size = (4, 2, 64) if quick else (256, 20, 224)
    bf16 = device == "cuda"
    out: dict[str, Any] = {"batch": batch}
    for compile_ in [False] if quick else [False, True]:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            result = cnnspec.train(
                # a factory, so that --quick can shrink the spec's input
                lambda: cnnspec.compile(SPECS / "resnet50.cnn", input_shape=(3, size, size)),
                input_shape=(3, size, size),
                data=f"synthetic:{batch * steps}",
                out=Path(tmp) / "run",
                epochs=2,
                batch_size=batch,
                precision="bf16" if bf16 else "fp32",
                channels_last=bf16,
                compile=compile_,
                warmup_epochs=0,
                progress="off",
                device=device,
                log_every=steps,
            )
        ours = result.history[-1]["images_per_s"]
        theirs = plain_loop_images_per_s(device, batch, steps, size, bf16, compile_)
        label = "compiled" if compile_ else "eager"
        print(
            f"  {label:8} batch {batch}: cnnspec train {ours:.1f} img/s, plain loop {theirs:.1f} img/s, "
            f"ratio {ours / theirs:.3f}",
            flush=True,
        )
        prefix = "compiled_" if compile_ else ""
        out[f"{prefix}cnnspec_images_per_s"], out[f"{prefix}plain_images_per_s"] = ours, theirs
    out["ok"] = all(
        out[f"{p}cnnspec_images_per_s"] >= 0.95 * out[f"{p}plain_images_per_s"]
        for p in ("", "compiled_")
        if f"{p}cnnspec_images_per_s" in out
    )
    return out


SECTIONS: dict[str, Callable[[str, bool], dict[str, Any]]] = {
    "parity": parity,
    "train": train,
    "torch_compile": compiled_step,
    "train_step": train_step,
    "compiled_train_step": compiled_train_step,
    "trainer": trainer,
}


def main() -> None:
    """Run every section, print a one-line verdict each, write the figures as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="small sizes, a subset of the canon")
    p.add_argument("--only", nargs="*", choices=list(SECTIONS), help="run these sections only")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu.py: no CUDA device (try --device cpu --quick)")
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"{name}, torch {torch.__version__}, cnnspec {cnnspec.__version__}", flush=True)
    results: dict[str, Any] = {"device": name, "torch": torch.__version__}
    for section in args.only or SECTIONS:
        print(f"{section}:", flush=True)
        t = time.perf_counter()
        try:
            results[section] = SECTIONS[section](args.device, args.quick)
        except Exception as e:  # one broken section must not hide the others' figures
            traceback.print_exc()
            results[section] = {"ok": False, "error": repr(e)}
        results[section]["seconds"] = time.perf_counter() - t
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    bare, ours = results.get("compiled_train_step", {}), results.get("trainer", {})
    if "cnnspec_step_s" in bare and "compiled_cnnspec_images_per_s" in ours and bare["batch"] == ours["batch"]:
        rate = bare["batch"] / bare["cnnspec_step_s"]
        share = ours["compiled_cnnspec_images_per_s"] / rate
        print(f"\ncompiled cnnspec train: {share:.1%} of the bare compiled step's {rate:.0f} img/s (issue 26: 95%)")
        results["trainer"]["share_of_bare_compiled_step"] = share
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    print("\nsection        ok     seconds")
    for section in args.only or SECTIONS:
        r = results[section]
        print(f"{section:14} {r['ok']!s:6} {r['seconds']:7.1f}")


if __name__ == "__main__":
    main()
