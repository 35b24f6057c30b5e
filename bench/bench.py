#!/usr/bin/env python3
"""aec against PyTorch (eager and torch.compile) and JAX, side by side on this
machine (`make bench`).

For each model (examples/simple.ae, examples/deep.ae, bench/big.ae,
examples/conv.ae, examples/conv_denoise.ae; a model aec cannot compile yet is
named and skipped):

  * aec compiles it; the program writes its initial weights (train --epochs 0);
  * aec trains a fixed number of batches of Fashion-MNIST (BATCHES of BATCH;
    conv_denoise.ae, which trains at a few hundred samples/s, 40),
    with --profile for the time spent in its matrix kernels; a model whose
    run would end under MIN_SECONDS goes over those batches several times
    (as epochs, each in a new order), the count fixed from one unmeasured run
    first, so that a burst of noise on the shared machine cannot decide a
    0.1-second run;
  * PyTorch trains the same model -- built from the program's own description
    (`./model describe`, interpreted op by op as tests/torch/check_torch.py
    does), from the same initial weights, on the same batches, with the same
    optimizer, batch size, thread count and number of passes;
    A model with random ops (conv_denoise's noise) draws them for each batch
    inside the timed loop, from a generator seeded with the run's seed;
  * torch.compile is a peer of its own: the same PyTorch worker with its whole
    step -- the batch's gather, forward, loss, backward and the optimizer's
    step() -- under one `torch.compile` (default mode, inductor; dynamo breaks
    the graph at backward(), AOTAutograd compiles the backward with the
    forward, and step() is a graph of its own), the same initial weights,
    batches, draws, optimizer and threads as the eager run; it trains 30
    batches unmeasured (it compiles there; eager and JAX leave out 2) before
    timing all of them; its first two losses must match eager PyTorch's of the
    same round (relative 1e-4), else its rate is left out;
  * runs alternate (aec, PyTorch, torch.compile, JAX, aec, ...), RUNS of each,
    in fresh processes;
    the table shows medians, the ratio, GFLOP/s, the share of the machine's
    measured sgemm peak (numpy/OpenBLAS on 2048^3, each measurement the best
    of 5 products, measured at the start and again after each aec run; the
    peak is the best of them all) and each run's peak memory;
  * JAX (jax[cpu], XLA), where it is installed, is the second peer: the same
    description interpreted op by op in JAX (bench/jax_replay.py), each step
    one jax.jit function with the batch's gather, the same initial weights,
    batches, optimizer and passes, pinned to as many cores as threads; its
    first two losses (the second after one update) must match PyTorch's
    (relative 1e-4), else its rate is left out;
  * aec's matrix kernels are compared with OpenBLAS (numpy) on the model's own
    products: the forward, input-gradient and weight-gradient products of each
    dense layer at the batch size -- and with MKL (torch.matmul of the bench's
    PyTorch from PyPI, whose CPU BLAS is MKL; left out where torch has no
    MKL) on the same shapes. All are timed the same way, the best of 20
    warm repeats of the step's products (aec's `time-kernels` command, which
    repeats every step's kernels on one batch without an update), alternating,
    medians of RUNS; the gemm and "vs MKL" columns are those ratios, and "in
    train" is aec's products' rate inside the training runs (with the update
    and the gather between the steps) over OpenBLAS's;
  * the headline is aec's rate over the STRONGEST peer's (eager PyTorch,
    torch.compile or JAX, whichever trained fastest, among those whose losses
    matched): "aec/best" and speedup_vs_best.<model>.

Then, once for the run:

  * concurrent_share: two examples/simple.ae trainings started together, 2
    threads each (4 threads on the machine's cores), their warm samples/s
    summed, over one such training alone; RUNS rounds alternating alone and
    together, each run long enough for twice MIN_SECONDS alone, medians (of
    the rates and of each round's share); each round also runs both with
    AEC_SHARE_CORES=1, the opt-in that gives threads up to a busy machine
    (concurrent_share.share_cores);
  * compile_s.<example>: for every examples/*.ae, the wall time of
    `aec EXAMPLE -o PROGRAM` (aec itself, then the C compiler, -O3
    -march=native, on the generated C with the runtime), median of 3 rounds
    over the examples in turn.

Figures for scripts go to standard output, `name value` a line:
speedup_vs_best.<model>, speedup.<model> (against eager PyTorch),
speedup_vs_compile.<model> and speedup_vs_jax.<model> (where that peer ran and
its losses matched), gemm_vs_openblas.<model>, gemm_vs_mkl.<model>,
gemm_in_training_vs_openblas.<model>, peak_fraction.<model>,
samples_per_s.{aec,torch,compile,jax}.<model>, concurrent_share (with
concurrent_alone_samples_per_s and concurrent_together_samples_per_s),
compile_s.<example>, and the sgemm peak; the table and notes go to standard
error. --runs, --no-compile, --no-concurrent, --no-compile-times and a list of
model files make a shorter run.
"""

import argparse
import gzip
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch"))
MODELS = ["examples/simple.ae", "examples/deep.ae", "bench/big.ae", "examples/conv.ae", "examples/conv_denoise.ae"]
# Models whose pass over BATCHES would take minutes a run train fewer batches:
# conv_denoise.ae trains at a few hundred samples/s on 2 cores, on every side.
FEWER_BATCHES = {"examples/conv_denoise.ae": 40}
FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def note(*args):
    print(*args, file=sys.stderr, flush=True)


def figure(text, name):
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return float(parts[1])
    return None


def peak_mib_of(command, cwd, env=None, also_ok=()):
    """Runs a command; returns (stdout, stderr, its peak resident MiB).
    An exit status other than 0 and those in also_ok raises; one of those returns
    None for the MiB.

    The peak is the command's own VmHWM, read from /proc every 20 ms once it has
    exec'd (each run lasts a second or more). wait4's ru_maxrss would also count
    the resident pages of this Python process, which the forked child holds until
    it execs (simple.ae's program read 18.7 MiB that way against its own 11.9 in
    one check); it is the fallback for a command too short to read."""
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            out = os.open(os.path.join(cwd, ".bench.out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            err = os.open(os.path.join(cwd, ".bench.err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.execvpe(command[0], command, env or os.environ)
        finally:
            os._exit(127)
    peak_kib, own = 0, "\0".join(command) + "\0"
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        try:
            with open(f"/proc/{pid}/cmdline") as f:
                execed = f.read() == own
            with open(f"/proc/{pid}/status") as f:
                hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")]
            if execed and hwm:
                peak_kib = max(peak_kib, hwm[0])
        except OSError:  # gone between wait4 and the reads
            pass
        time.sleep(0.02)
    with open(os.path.join(cwd, ".bench.out")) as f:
        out = f.read()
    with open(os.path.join(cwd, ".bench.err")) as f:
        err = f.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and code not in also_ok:
        raise RuntimeError(f"{' '.join(command)} failed:\n{err}")
    return out, err, (peak_kib or usage.ru_maxrss) / 1024.0 if code == 0 else None


def write_data(path, samples):
    with gzip.open(FASHION, "rb") as f:
        raw = f.read()
    images = np.frombuffer(raw[16:16 + samples * 784], dtype=np.uint8).reshape(samples, 784)
    np.save(path, images.astype(np.float32) / 255.0)


# ------------------------------------------------------------ PyTorch side
COMPILE_WARMUP = 30  # batches torch.compile trains before its clock starts (it compiles there)


def torch_worker(args, compiled=False):
    """One PyTorch measurement in its own process, eager or (compiled) with the
    whole step under torch.compile; prints samples_per_s."""
    import torch
    import check_torch
    torch.set_num_threads(args.threads)
    with open(args.description) as f:
        description = json.load(f)
    init = check_torch.read_safetensors(args.init)
    data = torch.from_numpy(np.load(args.data))
    params = {n: t.clone().requires_grad_(True) for n, t in init.items() if not n.startswith("optimizer.")}
    model = check_torch.Replay(description, params)
    steps = description["steps"]
    optimizers = [check_torch.make_optimizer(s, [params[p] for p in s["params"]]) for s in steps]
    losses = {loss["name"]: loss["node"] for loss in description["losses"]}
    # Each batch is gathered from the shuffled data inside the timed loop, as a
    # training loop does and as aec's program does (its gather is in its time).
    batches = [torch.from_numpy(rows) for rows in batch_rows(args, len(data))]
    first_losses = []  # of the warm-up's two steps: the second is after one update
    # A random op's draws (conv_denoise's noise), drawn for each batch inside the
    # timed loop from a generator of the run's seed, outside the compiled step,
    # so that eager and compiled runs of a seed see the same noise.
    randoms = [node for node in description["nodes"] if "random" in node]
    generator = torch.Generator().manual_seed(args.seed)

    def draws(n):
        return {node["id"]: {d: (torch.randn if d == "normal" else torch.rand)(
                    ([n] if node["batched"] else []) + node["shape"], generator=generator)
                 for d in node["random"]["draws"]} for node in randoms}

    def step(rows, drawn):
        x = data[rows]
        out = []
        for s, st in enumerate(steps):
            optimizers[s].zero_grad(set_to_none=True)
            loss = model.evaluate(losses[st["loss"]], x, drawn)
            loss.backward()
            optimizers[s].step()
            out.append(loss.detach())
        return out

    if compiled:  # the whole step: gather, forward, loss, backward and the optimizer's update
        step = torch.compile(step)

    def train(batch_list):
        for rows in batch_list:
            for loss in step(rows, draws(len(rows))):
                if len(first_losses) < 2:
                    first_losses.append(loss.item())

    measure(train, batches, args.batch, first_losses, f"torch_version {torch.__version__}",
            warmup=COMPILE_WARMUP if compiled else 2)


def measure(train, batches, batch, first_losses, version, warmup=2):
    """Trains `warmup` batches unmeasured (aec's first batches touch fresh memory
    too; JAX and torch.compile compile there), then times all of them; prints
    the rate, the first two losses (the second after one update) and the
    framework's version."""
    train(batches[:warmup])
    start = time.perf_counter()
    train(batches)
    seconds = time.perf_counter() - start
    print(f"samples_per_s {len(batches) * batch / seconds:.6g}")
    print(f"first_loss {first_losses[0]:.9g}")
    print(f"second_loss {first_losses[1]:.9g}")
    print(version)


def batch_rows(args, samples):
    """The rows of each batch, pass after pass: the PyTorch and JAX runs of a seed take the same."""
    order = np.random.default_rng(args.seed).permutation(samples)
    batches = [order[b * args.batch:(b + 1) * args.batch] for b in range(args.batches)]
    rng = np.random.default_rng(args.seed + 1)
    for _ in range(args.passes - 1):  # each further pass in a new order, as aec's epochs are
        order = rng.permutation(samples)
        batches += [order[b * args.batch:(b + 1) * args.batch] for b in range(args.batches)]
    return batches


# ---------------------------------------------------------------- JAX side
JAX_UNSUPPORTED = 3  # the JAX worker's exit status for a model it has no rule for


def jax_worker(args):
    """One JAX measurement in its own process; prints samples_per_s and its first two losses."""
    if args.threads < len(os.sched_getaffinity(0)):  # XLA's CPU thread pool takes the cores it may run on
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import described
    import jax_replay
    with open(args.description) as f:
        description = json.load(f)
    params = {n: jnp.asarray(a) for n, a in described.read_safetensors_arrays(args.init).items()
              if not n.startswith("optimizer.")}
    try:
        steps = [jax_replay.make_step(description, step, jax, jnp) for step in description["steps"]]
    except jax_replay.Unsupported as e:
        print(f"jax: {e}", file=sys.stderr)
        return JAX_UNSUPPORTED
    state = jax_replay.initial_state(description, params, jnp)
    data = jnp.asarray(np.load(args.data))
    batches = [jnp.asarray(rows.astype(np.int32)) for rows in batch_rows(args, data.shape[0])]
    counts = [0] * len(steps)  # each optimizer's own step count, as PyTorch's
    first_losses = []

    def train(batch_list):
        nonlocal params, state
        for rows in batch_list:
            for s, step in enumerate(steps):
                counts[s] += 1
                params, state, loss = step(params, state, jnp.float32(counts[s]), data, rows)
                if len(first_losses) < 2:
                    first_losses.append(float(loss))
        jax.block_until_ready(params)

    measure(train, batches, args.batch, first_losses, f"jax_version {jax.__version__}")


# ------------------------------------------------------------- OpenBLAS side
def sgemm_peak(threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    env.pop("OPENBLAS_CORETYPE", None)  # both together, as the machine notes ask
    env.pop("OPENBLAS_L2_SIZE", None)
    code = ("import numpy as np, time\n"
            "a = np.random.rand(2048, 2048).astype(np.float32); b = np.random.rand(2048, 2048).astype(np.float32)\n"
            "a @ b\nbest = 0\n"
            "for _ in range(5):\n    t = time.perf_counter(); a @ b; best = max(best, 2 * 2048**3 / (time.perf_counter() - t) / 1e9)\n"
            "print(best)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def openblas_gflops_on(shapes, threads, repeats=20):
    """GFLOP/s of numpy (OpenBLAS) over a model's products [(m, k, n), ...]."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    code = ("import numpy as np, time, json, sys\n"
            f"shapes = {json.dumps(shapes)}\n"
            "pairs = [(np.random.rand(m, k).astype(np.float32), np.random.rand(k, n).astype(np.float32)) for m, k, n in shapes]\n"
            "flops = sum(2.0 * m * k * n for m, k, n in shapes)\n"
            "for a, b in pairs: a @ b\n"
            "best = 0\n"
            f"for _ in range({repeats}):\n"
            "    t = time.perf_counter()\n"
            "    for a, b in pairs: a @ b\n"
            "    best = max(best, flops / (time.perf_counter() - t) / 1e9)\n"
            "print(best)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def mkl_gflops_on(python, shapes, threads, repeats=20):
    """GFLOP/s of torch.matmul over a model's products, timed as openblas_gflops_on
    times numpy's; None where torch's BLAS is not MKL (Debian's torch uses OpenBLAS)."""
    code = ("import torch, time, json\n"
            f"torch.set_num_threads({threads})\n"
            "if not torch.backends.mkl.is_available(): print('none'); raise SystemExit\n"
            f"shapes = {json.dumps(shapes)}\n"
            "pairs = [(torch.rand(m, k), torch.rand(k, n)) for m, k, n in shapes]\n"
            "flops = sum(2.0 * m * k * n for m, k, n in shapes)\n"
            "for a, b in pairs: torch.matmul(a, b)\n"
            "best = 0\n"
            f"for _ in range({repeats}):\n"
            "    t = time.perf_counter()\n"
            "    for a, b in pairs: torch.matmul(a, b)\n"
            "    best = max(best, flops / (time.perf_counter() - t) / 1e9)\n"
            "print(best)\n")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()
    return None if out == "none" else float(out)


def dense_shapes(description, batch):
    """The (m, k, n) products of every dense layer in one training step."""
    nodes = {n["id"]: n for n in description["nodes"]}
    shapes = []
    for node in description["nodes"]:
        if node["op"] != "dense":
            continue
        k, n = nodes[node["inputs"][1]]["shape"]
        shapes.append((batch, k, n))          # forward
        shapes.append((k, batch, n))          # weight gradient
        if nodes[node["inputs"][0]]["op"] != "input":
            shapes.append((batch, n, k))      # input gradient
    return shapes


# ---------------------------------------------------------------- the bench
def bench_model(args, source, work):
    if source in FEWER_BATCHES and FEWER_BATCHES[source] < args.batches:
        args = argparse.Namespace(**dict(vars(args), batches=FEWER_BATCHES[source]))
    name = os.path.splitext(os.path.basename(source))[0]
    program = os.path.join(work, name)
    compiled = subprocess.run([args.aec, os.path.join(ROOT, source), "-o", program], capture_output=True, text=True)
    if compiled.returncode != 0:
        reason = "not supported yet" if "not supported yet" in compiled.stderr else compiled.stderr.strip()
        note(f"{name}: skipped, aec cannot compile it yet ({reason})")
        return None
    stats = subprocess.run([args.aec, os.path.join(ROOT, source), "--stats"], capture_output=True, text=True,
                           check=True).stdout
    flops = sum(float(line.split()[1]) for line in stats.splitlines() if line.startswith("flops_per_sample.step."))
    description = os.path.join(work, f"{name}.json")
    with open(description, "w") as f:
        f.write(subprocess.run([program, "describe"], capture_output=True, text=True, check=True).stdout)
    with open(description) as f:
        desc = json.load(f)
    init = os.path.join(work, f"{name}.init.safetensors")
    subprocess.run([program, "train", "--epochs", "0", "--checkpoint", init], capture_output=True, check=True)
    data = os.path.join(work, f"data{args.batches}.npy")
    if not os.path.exists(data):
        write_data(data, args.batch * args.batches)

    def aec_run(passes):
        return peak_mib_of([program, "train", "--data", data, "--test", "none", "--epochs", str(passes), "--batch",
                            str(args.batch), "--threads", str(args.threads), "--resume", init,
                            "--checkpoint", os.path.join(work, f"{name}.run.safetensors"), "--profile"], work)

    # One unmeasured run fixes the passes over the batches: enough for MIN_SECONDS.
    first = aec_run(1)[0]
    rate = figure(first, "warm_samples_per_s") or figure(first, "samples_per_s")  # no warm rate from one batch
    seconds = args.batches * args.batch / rate
    passes = max(1, math.ceil(args.min_seconds / seconds))
    aec_rates, torch_rates, aec_mem, torch_mem, gemm_rates, sgemm_rates = [], [], [], [], [], []
    jax_rates, jax_mem, jax_note = [], [], "not installed" if not args.jax else ""
    compile_rates, compile_mem, compile_note = [], [], "not asked for (--no-compile)" if not args.compile else ""
    torch_version = "?"

    def worker(kind, r, also_ok=()):
        return peak_mib_of([args.python, os.path.abspath(__file__), f"--{kind}-worker", "--description",
                            description, "--init", init, "--data", data, "--batch", str(args.batch),
                            "--batches", str(args.batches), "--passes", str(passes), "--threads",
                            str(args.threads), "--seed", str(r)],
                           work, env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)), also_ok=also_ok)

    for r in range(args.runs):
        out, _, mib = aec_run(passes)
        aec_rates.append(figure(out, "warm_samples_per_s"))  # without the first batch, like PyTorch's warm-up
        gemm_rates.append(figure(out, "gemm_gflops") or 0.0)
        aec_mem.append(mib)
        # The sgemm rate again right after each aec run: the machine's rate
        # drifts by a third within minutes on some days, and the peak the
        # shares are taken of is the best of all these (see bench()).
        sgemm_rates.append(sgemm_peak(args.threads))
        out, _, mib = worker("torch", r)
        torch_rates.append(figure(out, "samples_per_s"))
        torch_first = [figure(out, "first_loss"), figure(out, "second_loss")]
        torch_version = next((line.split()[1] for line in out.splitlines() if line.startswith("torch_version")), "?")
        torch_mem.append(mib)
        if not compile_note:
            out, err, mib = worker("compile", r, also_ok=(1,))
            compile_first = [figure(out, "first_loss"), figure(out, "second_loss")]
            if mib is None:
                compile_note = (err.strip().splitlines() or ["it failed"])[-1]
            elif any(c is None or abs(c - t) > 1e-4 * abs(t) for c, t in zip(compile_first, torch_first)):
                compile_note = f"its first two losses {compile_first} are not eager PyTorch's {torch_first}"
            else:
                compile_rates.append(figure(out, "samples_per_s"))
                compile_mem.append(mib)
        if jax_note:
            continue
        out, err, mib = worker("jax", r, also_ok=(JAX_UNSUPPORTED,))
        jax_first = [figure(out, "first_loss"), figure(out, "second_loss")]
        if mib is None:
            jax_note = err.strip().splitlines()[-1]
        elif any(j is None or abs(j - t) > 1e-4 * abs(t) for j, t in zip(jax_first, torch_first)):
            jax_note = f"its first two losses {jax_first} are not PyTorch's {torch_first}"
        else:
            jax_rates.append(figure(out, "samples_per_s"))
            jax_mem.append(mib)
    if jax_note and args.jax:
        note(f"{name}: JAX left out ({jax_note})")
    if compile_note and args.compile:
        note(f"{name}: torch.compile left out ({compile_note})")
    jax_rate = statistics.median(jax_rates) if jax_rates and not jax_note else None
    compile_rate = statistics.median(compile_rates) if compile_rates and not compile_note else None
    aec_rate, torch_rate = statistics.median(aec_rates), statistics.median(torch_rates)
    gemm_aec = statistics.median(gemm_rates)
    # aec's products as OpenBLAS's are timed, the best of 20 warm repeats of one
    # step's products, alternating, medians of RUNS.
    # MKL (torch.matmul) on the same shapes, the same way, in the same rounds.
    warm_rates, blas_rates, mkl_rates = [], [], []
    for _ in range(args.runs):
        warm = subprocess.run([program, "time-kernels", "--data", data, "--batch", str(args.batch), "--threads",
                               str(args.threads), "--count", "20"], capture_output=True, text=True, check=True, cwd=work)
        warm_rates.append(figure(warm.stdout, "gemm_gflops_best") or 0.0)
        blas_rates.append(openblas_gflops_on(dense_shapes(desc, args.batch), args.threads))
        if dense_shapes(desc, args.batch):
            mkl_rates.append(mkl_gflops_on(args.python, dense_shapes(desc, args.batch), args.threads))
    gemm_warm, gemm_blas = statistics.median(warm_rates), statistics.median(blas_rates)
    gemm_mkl = statistics.median(mkl_rates) if mkl_rates and None not in mkl_rates else None
    peers = {"torch": torch_rate, "compile": compile_rate, "jax": jax_rate}
    best_peer = max((p for p in peers if peers[p]), key=lambda p: peers[p])
    gflops = aec_rate * flops / 1e9
    note(f"{name}: samples/s, run by run: aec " + ", ".join(f"{x:.0f}" for x in aec_rates)
         + "; torch " + ", ".join(f"{x:.0f}" for x in torch_rates)
         + "; compile " + (", ".join(f"{x:.0f}" for x in compile_rates) or "-")
         + "; jax " + (", ".join(f"{x:.0f}" for x in jax_rates) or "-")
         + f"; products GFLOP/s, warm: aec {gemm_warm:.1f}, OpenBLAS {gemm_blas:.1f}, MKL "
         + (f"{gemm_mkl:.1f}" if gemm_mkl else "-"))
    note(f"{name}: sgemm 2048^3 after each aec run: " + ", ".join(f"{rate:.0f}" for rate in sgemm_rates)
         + " GFLOP/s; aec's runs: " + ", ".join(f"{rate * flops / 1e9:.0f}" for rate in aec_rates) + " GFLOP/s")
    return {"name": name, "batches": args.batches, "aec": aec_rate, "torch": torch_rate, "ratio": aec_rate / torch_rate, "gflops": gflops,
            "torch_gflops": torch_rate * flops / 1e9, "sgemm_runs": sgemm_rates, "aec_mib": max(aec_mem),
            "torch_mib": max(torch_mem), "gemm_aec": gemm_aec, "gemm_warm": gemm_warm,
            "gemm_blas": gemm_blas, "gemm_ratio": gemm_warm / gemm_blas if gemm_blas else 0.0,
            "gemm_training_ratio": gemm_aec / gemm_blas if gemm_blas else 0.0, "torch_version": torch_version,
            "aec_runs": aec_rates, "torch_runs": torch_rates, "passes": passes,
            "jax": jax_rate, "jax_ratio": aec_rate / jax_rate if jax_rate else None,
            "jax_mib": max(jax_mem) if jax_rate else None,
            "compile": compile_rate, "compile_ratio": aec_rate / compile_rate if compile_rate else None,
            "compile_mib": max(compile_mem) if compile_rate else None, "compile_runs": compile_rates,
            "jax_runs": jax_rates, "gemm_mkl": gemm_mkl, "gemm_mkl_ratio": gemm_warm / gemm_mkl if gemm_mkl else None,
            "best_peer": best_peer, "best_ratio": aec_rate / peers[best_peer]}


def compile_times(args, work):
    """compile_s.<example>: the wall time of `aec EXAMPLE -o PROGRAM` (aec, then the
    C compiler on its output with the runtime), for every examples/*.ae, median
    of 3, the examples taken in turn in each round."""
    examples = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".ae"))
    times = {e: [] for e in examples}
    for _ in range(3):
        for e in examples:
            if times[e] is None:
                continue
            start = time.perf_counter()
            done = subprocess.run([args.aec, os.path.join(ROOT, "examples", e), "-o", os.path.join(work, "compiled")],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                note(f"compile_s: {e} skipped, aec cannot compile it ({done.stderr.strip().splitlines()[-1:]})")
                times[e] = None
            else:
                times[e].append(time.perf_counter() - start)
    note("aec EXAMPLE -o PROGRAM, seconds (median of 3; min-max): " + ", ".join(
        f"{e[:-3]} {statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f})" for e, t in times.items() if t))
    for e, t in times.items():
        if t:
            print(f"compile_s.{e[:-3]} {statistics.median(t):.6g}")


CONCURRENT_THREADS = 2  # each of the two trainings'


def concurrent_share(args, work):
    """concurrent_share: two simple.ae trainings started together, 2 threads each,
    their summed samples/s over one run alone's; rounds alternate alone and
    together (RUNS of each), medians. Each run's rate is its own warm rate.
    Each round measures the default programs and then the same with
    AEC_SHARE_CORES=1 (the opt-in that gives up threads to a busy machine):
    concurrent_share and concurrent_share.share_cores."""
    program = os.path.join(work, "concurrent_simple")
    subprocess.run([args.aec, os.path.join(ROOT, "examples", "simple.ae"), "-o", program], capture_output=True,
                   check=True)
    init = os.path.join(work, "concurrent.init.safetensors")
    subprocess.run([program, "train", "--epochs", "0", "--checkpoint", init], capture_output=True, check=True)

    def command(passes, k):
        return [program, "train", "--data", os.path.join(work, f"data{args.batches}.npy"), "--test", "none", "--epochs",
                str(passes), "--batch", str(args.batch), "--threads", str(CONCURRENT_THREADS), "--resume", init,
                "--checkpoint", os.path.join(work, f"concurrent.{k}.safetensors")]

    def run_together(passes, count, share_cores):
        env = dict(os.environ)
        env.pop("AEC_SHARE_CORES", None)
        if share_cores:
            env["AEC_SHARE_CORES"] = "1"
        procs = [subprocess.Popen(command(passes, k), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  cwd=work, env=env) for k in range(count)]
        outs = [p.communicate()[0] for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError("a concurrent simple.ae training failed")
        return [figure(out, "warm_samples_per_s") for out in outs]

    rate = run_together(1, 1, False)[0]  # unmeasured: fixes the passes, as for the models
    passes = max(1, math.ceil(2 * args.min_seconds / (args.batches * args.batch / rate)))
    conditions = (("", False), (".share_cores", True))
    alone = {name: [] for name, _ in conditions}
    together = {name: [] for name, _ in conditions}
    shares = {name: [] for name, _ in conditions}
    for _ in range(args.runs):
        for name, share_cores in conditions:
            alone[name].append(run_together(passes, 1, share_cores)[0])
            together[name].append(sum(run_together(passes, 2, share_cores)))
            shares[name].append(together[name][-1] / alone[name][-1])
    for name, _ in conditions:
        note(f"concurrent{name or ' (default)'}: simple.ae, {CONCURRENT_THREADS} threads each, {passes} passes; alone "
             + ", ".join(f"{x:.0f}" for x in alone[name]) + " samples/s; two together, summed "
             + ", ".join(f"{x:.0f}" for x in together[name]) + "; shares "
             + ", ".join(f"{x:.2f}" for x in shares[name]))
        print(f"concurrent_alone_samples_per_s{name} {statistics.median(alone[name]):.6g}")
        print(f"concurrent_together_samples_per_s{name} {statistics.median(together[name]):.6g}")
        print(f"concurrent_share{name} {statistics.median(shares[name]):.6g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aec", default=os.path.join(ROOT, "build", "aec"))
    parser.add_argument("--python", default=sys.executable, help="the Python that runs PyTorch")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="pass over the batches often enough that each aec run lasts this long")
    parser.add_argument("--passes", type=int, default=1, help="(the PyTorch worker's) passes over the batches")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--torch-worker", action="store_true")
    parser.add_argument("--jax-worker", action="store_true")
    parser.add_argument("--compile-worker", action="store_true")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="leave torch.compile out")
    parser.add_argument("--no-compile-times", dest="compile_times", action="store_false",
                        help="leave out compile_s.<example> (aec's compile times)")
    parser.add_argument("--no-concurrent", dest="concurrent", action="store_false",
                        help="leave out concurrent_share (two simple.ae trainings at once)")
    parser.add_argument("--no-jax", dest="jax", action="store_false", help="PyTorch as the only peer")
    parser.add_argument("--description")
    parser.add_argument("--init")
    parser.add_argument("--data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("models", nargs="*")
    args = parser.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    if args.jax_worker:
        return jax_worker(args)
    if args.compile_worker:
        return torch_worker(args, compiled=True)
    if args.jax:
        found = subprocess.run([args.python, "-c", "import jax; print(jax.__version__)"], capture_output=True,
                               text=True)
        args.jax = found.stdout.strip() if found.returncode == 0 else None

    work = tempfile.mkdtemp(prefix="aec-bench-")  # about 230 MB: data, programs, checkpoints
    try:
        return bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(args, work):
    write_data(os.path.join(work, f"data{args.batches}.npy"), args.batch * args.batches)
    start = sgemm_peak(args.threads)
    note(f"bench: {args.threads} threads, batch {args.batch}, {args.batches} batches a pass, passes enough for "
         f"{args.min_seconds:g} s of aec, medians of {args.runs} alternating runs; "
         f"sgemm 2048^3 (numpy/OpenBLAS) at the start: {start:.0f} GFLOP/s")
    results = [r for r in (bench_model(args, m, work) for m in (args.models or MODELS)) if r]
    # The machine's sgemm peak: the best of the start's measurement and those
    # after every aec run. One measurement at the start once read 235 GFLOP/s
    # where the runs after it read 205-316, and the large model's share of it,
    # 91%, said more about the start than about aec.
    peak = max([start] + [rate for r in results for rate in r["sgemm_runs"]])
    note(f"sgemm 2048^3 peak, the best of {1 + sum(len(r['sgemm_runs']) for r in results)} measurements: "
         f"{peak:.0f} GFLOP/s")
    print(f"sgemm_start_gflops {start:.6g}")
    print(f"sgemm_peak_gflops {peak:.6g}")
    for r in results:
        r["peak"] = r["gflops"] / peak
    if results:
        note(f"PyTorch {results[0]['torch_version']} ({args.python}), eager and torch.compile; "
             + (f"JAX {args.jax} (jax[cpu])" if args.jax else "JAX not installed"))

    def cell(value, width, fmt):
        return f"{value:>{width}{fmt}}" if value else f"{'-':>{width}}"

    header = (f"{'model':<12} {'batches':>7} {'passes':>6} {'aec/s':>9} {'torch/s':>9} {'compile/s':>9} {'jax/s':>9} "
              f"{'best peer':>9} {'aec/best':>8} {'/torch':>6} {'/compile':>8} {'/jax':>6} {'aec GF/s':>8} "
              f"{'torch GF/s':>10} {'peak':>5} {'gemm GF/s':>9} {'warm GF/s':>9} {'BLAS GF/s':>9} {'MKL GF/s':>8} "
              f"{'gemm':>5} {'vs MKL':>6} {'in train':>8} {'MiB: aec':>8} {'torch':>6} {'compile':>7} {'jax':>5}")
    note(header)
    for r in results:
        note(f"{r['name']:<12} {r['batches']:>7} {r['passes']:>6} {r['aec']:>9.0f} {r['torch']:>9.0f} {cell(r['compile'], 9, '.0f')} "
             f"{cell(r['jax'], 9, '.0f')} {r['best_peer']:>9} {r['best_ratio']:>8.2f} {r['ratio']:>6.2f} "
             f"{cell(r['compile_ratio'], 8, '.2f')} {cell(r['jax_ratio'], 6, '.2f')} {r['gflops']:>8.1f} "
             f"{r['torch_gflops']:>10.1f} {100 * r['peak']:>4.0f}% {r['gemm_aec']:>9.1f} {r['gemm_warm']:>9.1f} "
             f"{r['gemm_blas']:>9.1f} {cell(r['gemm_mkl'], 8, '.1f')} {r['gemm_ratio']:>5.2f} "
             f"{cell(r['gemm_mkl_ratio'], 6, '.2f')} {r['gemm_training_ratio']:>8.2f} {r['aec_mib']:>8.0f} "
             f"{r['torch_mib']:>6.0f} {cell(r['compile_mib'], 7, '.0f')} {cell(r['jax_mib'], 5, '.0f')}")
    for r in results:
        print(f"speedup_vs_best.{r['name']} {r['best_ratio']:.6g}")
        if r["compile"]:
            print(f"speedup_vs_compile.{r['name']} {r['compile_ratio']:.6g}")
            print(f"samples_per_s.compile.{r['name']} {r['compile']:.6g}")
        if r["jax"]:
            print(f"speedup_vs_jax.{r['name']} {r['jax_ratio']:.6g}")
            print(f"samples_per_s.jax.{r['name']} {r['jax']:.6g}")
        print(f"speedup.{r['name']} {r['ratio']:.6g}")
        print(f"gemm_vs_openblas.{r['name']} {r['gemm_ratio']:.6g}")
        if r["gemm_mkl"]:
            print(f"gemm_vs_mkl.{r['name']} {r['gemm_mkl_ratio']:.6g}")
        print(f"gemm_in_training_vs_openblas.{r['name']} {r['gemm_training_ratio']:.6g}")
        print(f"peak_fraction.{r['name']} {r['peak']:.6g}")
        print(f"samples_per_s.aec.{r['name']} {r['aec']:.6g}")
        print(f"samples_per_s.torch.{r['name']} {r['torch']:.6g}")
    if args.concurrent:
        concurrent_share(args, work)
    if args.compile_times:
        compile_times(args, work)
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
