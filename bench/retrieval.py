#!/usr/bin/env python3
"""bench/retrieval.py — aec's exact nearest-neighbour search (`retrieve`)
against FAISS's exact IndexFlatL2 (and IndexFlatIP for --cosine) on the same
vectors, the same thread count: the raw Fashion-MNIST pixels and the codes of
a model aec compiles (examples/simple.ae, trained for a few batches).

Run from the repository root after `make`, with a Python that has numpy and
faiss-cpu (the bench's virtual environment):

    build/bench-venv/bin/python bench/retrieval.py [--threads 2] [--runs 5]

Each run calls `retrieve` once (it searches the codes, then the raw pixels,
and reports each search's seconds: raw_search_s, and code_search_s, which
leaves out encoding the queries) and FAISS's two searches right after it, so
aec and FAISS alternate. Prints on stdout

    retrieve_vs_faiss.raw R
    retrieve_vs_faiss.codes R

R being aec's searches per second over FAISS's, the median over the runs of
each run's ratio; the details go to stderr. Fails (exit 1) when a query's
neighbours differ from FAISS's beyond rounding: the lists may differ only
where two rows lie at distances that agree to within float rounding.
"""
import argparse
import gzip
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, cwd):
    result = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"retrieval.py: {' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def figures(stdout):
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def pixels(np, name, n):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(n, 784)
    return raw.astype(np.float32) / np.float32(255)  # as runtime/data/idx.c divides


def agreement(np, db, q, ours, theirs, cosine):
    """(identical lists, identical up to rounding) as fractions of queries: a
    query agrees up to rounding when both lists' distances, in double, agree
    rank by rank to within float32 rounding of the terms."""
    n_q, k = ours.shape
    same = int((ours == theirs).all(axis=1).sum())
    ok = 0
    db64, q64 = db.astype(np.float64), q.astype(np.float64)
    norms = np.einsum("ij,ij->i", db64, db64)
    bad = []
    for i in range(n_q):
        if (ours[i] == theirs[i]).all():
            ok += 1
            continue
        if (ours[i] >= len(db)).any() or (theirs[i] >= len(db)).any():
            bad.append(i)
            continue

        def dist(rows):
            dots = db64[rows] @ q64[i]
            if cosine:
                return -dots / np.sqrt(np.maximum(norms[rows], 1e-300))
            return norms[rows] - 2 * dots

        a, b = dist(ours[i]), dist(theirs[i])
        scale = float(np.dot(q64[i], q64[i])) + float(norms[np.concatenate([ours[i], theirs[i]])].max())
        if cosine:
            scale = float(np.sqrt(np.dot(q64[i], q64[i])))
        if np.all(np.abs(np.sort(a) - np.sort(b)) <= 1e-5 * scale):
            ok += 1
        else:
            bad.append(i)
    return same / n_q, ok / n_q, bad


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--model", default="examples/simple.ae")
    parser.add_argument("--batches", type=int, default=30, help="training batches before the search (0: initial weights)")
    parser.add_argument("--no-cosine", action="store_true", help="skip the cosine / IndexFlatIP comparison")
    parser.add_argument("--dir", default="build/retrieval-bench")
    args = parser.parse_args()

    threads = str(args.threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    try:
        import numpy as np  # after the thread counts, which OpenBLAS reads at load
        import faiss
    except ImportError as e:
        sys.exit(f"retrieval.py: {e}: run it with a Python that has numpy and faiss-cpu (pip install faiss-cpu numpy)")

    faiss.omp_set_num_threads(args.threads)
    work = os.path.join(ROOT, args.dir)
    os.makedirs(work, exist_ok=True)
    aec = os.path.join(ROOT, "build", "aec")
    if not os.access(aec, os.X_OK):
        sys.exit("retrieval.py: build/aec is missing: run make first")
    program = os.path.join(work, "model")
    run([aec, os.path.join(ROOT, args.model), "-o", program], ROOT)
    ckpt = "model.safetensors"
    if args.batches > 0:
        run([program, "train", "--epochs", "1", "--batches", str(args.batches), "--threads", threads, "--checkpoint", ckpt], work)
    else:
        run([program, "train", "--epochs", "0", "--checkpoint", ckpt], work)
    run([program, "encode", "--checkpoint", ckpt, "--data", "fashion-mnist:train", "-o", "db.npy", "--threads", threads], work)
    run([program, "encode", "--checkpoint", ckpt, "--data", "fashion-mnist:test", "-o", "q.npy", "--threads", threads], work)
    n_q, k = args.queries, args.k
    codes_db = np.ascontiguousarray(np.load(os.path.join(work, "db.npy")), dtype=np.float32)
    codes_q = np.ascontiguousarray(np.load(os.path.join(work, "q.npy"))[:n_q], dtype=np.float32)
    raw_db = pixels(np, "train-images-idx3-ubyte.gz", 60000)
    raw_q = np.ascontiguousarray(pixels(np, "t10k-images-idx3-ubyte.gz", 10000)[:n_q])
    log(f"retrieval: {n_q} queries against {len(raw_db)} rows, k = {k}, {args.threads} threads; "
        f"raw {raw_db.shape[1]} values, codes {codes_db.shape[1]} ({args.model}, {args.batches} batches)")

    def faiss_index(x, cosine):
        if cosine:
            x = x.copy()
            faiss.normalize_L2(x)  # cosine: the inner product with unit rows ranks as retrieve --cosine
            index = faiss.IndexFlatIP(x.shape[1])
        else:
            index = faiss.IndexFlatL2(x.shape[1])
        index.add(x)
        return index

    failed = False
    results = {}
    for cosine in ([False] if args.no_cosine else [False, True]):
        metric = "cosine (IndexFlatIP)" if cosine else "Euclidean (IndexFlatL2)"
        indexes = {"raw": faiss_index(raw_db, cosine), "codes": faiss_index(codes_db, cosine)}
        queries = {"raw": raw_q, "codes": codes_q}
        times = {"aec.raw": [], "aec.codes": [], "faiss.raw": [], "faiss.codes": []}
        faiss_neighbours = {}
        ours = None
        for r in range(args.runs):
            cmd = [program, "retrieve", "--checkpoint", ckpt, "--count", str(n_q), "-k", str(k), "--threads", threads,
                   "-o", "neighbours.npy"] + (["--cosine"] if cosine else [])
            fig = figures(run(cmd, work))
            times["aec.raw"].append(fig["raw_search_s"])
            times["aec.codes"].append(fig["code_search_s"])
            ours = np.load(os.path.join(work, "neighbours.npy")).astype(np.int64)
            for what in ("raw", "codes"):
                start = time.perf_counter()
                _, found = indexes[what].search(queries[what], k)
                times[f"faiss.{what}"].append(time.perf_counter() - start)
                faiss_neighbours[what] = found
        for what, slot, db in (("raw", 1, raw_db), ("codes", 0, codes_db)):
            a, f = times[f"aec.{what}"], times[f"faiss.{what}"]
            ratios = [fs / max(at, 1e-9) for at, fs in zip(a, f)]
            d = db.shape[1]
            gflop = 2.0 * n_q * len(db) * d / 1e9
            same, ok, bad = agreement(np, db, queries[what], ours[slot], faiss_neighbours[what], cosine)
            log(f"  {what:5s} {metric}: aec {statistics.median(a):.3f} s ({gflop / statistics.median(a):.1f} GFLOP/s; "
                f"runs {min(a):.3f}-{max(a):.3f}), FAISS {statistics.median(f):.3f} s "
                f"({gflop / statistics.median(f):.1f} GFLOP/s; {min(f):.3f}-{max(f):.3f}); "
                f"aec/FAISS searches/s median {statistics.median(ratios):.2f} (runs {min(ratios):.2f}-{max(ratios):.2f}); "
                f"neighbour lists identical {100 * same:.2f}%, identical up to float rounding {100 * ok:.2f}%")
            if bad:
                failed = True
                log(f"  {what}: {len(bad)} queries differ beyond rounding, e.g. query {bad[0]}: "
                    f"aec {ours[slot][bad[0]].tolist()}, FAISS {faiss_neighbours[what][bad[0]].tolist()}")
            results[(what, cosine)] = statistics.median(ratios)
    print(f"retrieve_vs_faiss.raw {results[('raw', False)]:.3f}")
    print(f"retrieve_vs_faiss.codes {results[('codes', False)]:.3f}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
