import json, struct, numpy as np, torch

def load_aec(path):  # an aec checkpoint as a PyTorch state_dict (docs/checkpoints.md)
    raw = open(path, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n]); meta = header.pop("__metadata__", {})
    def tensor(name, t):  # dense kernels [in, out] -> Linear.weight [out, in]; the rest as they are
        w = torch.from_numpy(np.frombuffer(raw, {"F32": "<f4", "F64": "<f8"}[t["dtype"]], int(np.prod(t["shape"])), 8 + n + t["data_offsets"][0]).reshape(t["shape"]).copy())
        return w.T.contiguous() if meta.get("layout." + name, "in,out" if w.dim() == 2 else "") == "in,out" else w
    return {k.replace(".kernel", ".weight"): tensor(k, t) for k, t in header.items() if not k.startswith("optimizer.")}
