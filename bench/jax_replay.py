"""A model's described graph (`./model describe`) trained in JAX: the second
peer of `make bench` (bench/bench.py's --jax-worker).

The graph is interpreted op by op, as tests/torch/check_torch.py does for
PyTorch, with the same conventions: batched values have the batch axis first,
images are NCHW, a conv kernel is [out, in, k, k], "same" padding is Keras's
(tests/torch/described.py, which also reads the checkpoint).
Each training step of the description (its loss, its parameters, Adam or SGD
as PyTorch defines them) is one function compiled by jax.jit, which also
gathers the batch's rows from the data, so XLA sees the whole step.

Ops the bench models do not use (deconv, unpool, the random ops) have no rule
here: such a model is named and skipped on the JAX side (Unsupported).
"""

import described  # tests/torch/described.py: bench.py puts its folder on the path


class Unsupported(Exception):
    pass


def make_ops(jnp, jax):
    """One function per IR op name: f(node, inputs, batched_first_input) -> array."""
    lax = jax.lax

    def conv(node, x, first_batched):
        x, w, b = x
        stride, valid, k = int(node["attr"][0]), node["attr"][1] != 0, w.shape[2]
        oh, ow = node["shape"][1], node["shape"][2]
        pads = (described.conv_pads(x.shape[2], oh, k, stride, valid),
                described.conv_pads(x.shape[3], ow, k, stride, valid))
        y = lax.conv_general_dilated(x, w, (stride, stride), pads, dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y[:, :, :oh, :ow] + b.reshape(1, -1, 1, 1)

    def maxpool(node, x, first_batched):
        x = x[0]
        k, same = int(node["attr"][0]), node["attr"][1] == 0
        pads = [(0, 0), (0, 0), described.pool_pads(x.shape[2], k, same), described.pool_pads(x.shape[3], k, same)]
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, k, k), pads)

    def upsample(node, x, first_batched):
        k = int(node["attr"][0])
        return jnp.repeat(jnp.repeat(x[0], k, axis=2), k, axis=3)

    def rows(x, first_batched):
        return x.shape[0] if first_batched else 1

    def bce(node, x, first_batched):
        p, t = x
        t = jnp.broadcast_to(t, p.shape)
        return -jnp.mean(t * jnp.maximum(jnp.log(p), -100) + (1 - t) * jnp.maximum(jnp.log(1 - p), -100))

    def bce_logits(node, x, first_batched):
        z, t = x
        t = jnp.broadcast_to(t, z.shape)
        return jnp.mean(jnp.maximum(z, 0) - z * t + jnp.log1p(jnp.exp(-jnp.abs(z))))

    def kl_sparsity(node, x, first_batched):
        rho = node["attr"][0]
        mean = jnp.clip(jnp.mean(x[0], axis=0), 1e-7, 1 - 1e-7)
        return jnp.sum(rho * jnp.log(rho / mean) + (1 - rho) * jnp.log((1 - rho) / (1 - mean)))

    return {
        "dense": lambda node, x, fb: x[0] @ x[1] + x[2],
        "conv": conv,
        "maxpool": maxpool,
        "upsample": upsample,
        "reshape": lambda node, x, fb: x[0].reshape([x[0].shape[0]] + node["shape"]),
        "relu": lambda node, x, fb: jax.nn.relu(x[0]),
        "leaky_relu": lambda node, x, fb: jnp.where(x[0] >= 0, x[0], node["attr"][0] * x[0]),
        "sigmoid": lambda node, x, fb: jax.nn.sigmoid(x[0]),
        "tanh": lambda node, x, fb: jnp.tanh(x[0]),
        "softplus": lambda node, x, fb: jax.nn.softplus(x[0]),
        "add": lambda node, x, fb: x[0] + x[1],
        "sub": lambda node, x, fb: x[0] - x[1],
        "mul": lambda node, x, fb: x[0] * x[1],
        "div": lambda node, x, fb: x[0] / x[1],
        "neg": lambda node, x, fb: -x[0],
        "sum": lambda node, x, fb: jnp.sum(x[0]),
        "mean": lambda node, x, fb: jnp.mean(x[0]),
        "l1": lambda node, x, fb: jnp.sum(jnp.abs(x[0])) / rows(x[0], fb),
        "sum_squares": lambda node, x, fb: jnp.sum(x[0] * x[0]) / rows(x[0], fb),
        "mse": lambda node, x, fb: jnp.mean((x[0] - x[1]) ** 2),
        "bce": bce,
        "bce_logits": bce_logits,
        "clip": lambda node, x, fb: jnp.clip(x[0], node["attr"][0], node["attr"][1]),
        "kl_sparsity": kl_sparsity,
    }


def loss_function(description, node_id, ops, jnp):
    """f(params, x) -> the loss node's value, for params by name and a batch x."""
    nodes = {node["id"]: node for node in description["nodes"]}

    checked = set()

    def check(i):  # each node once: a value read by several nodes is not walked again
        if i in checked:
            return
        checked.add(i)
        node = nodes[i]
        if "random" in node or (node["op"] not in ops and node["op"] not in ("input", "param", "constant")):
            raise Unsupported(f"no JAX rule for the op '{node['op']}' (node {i}, {node['name']})")
        for j in node["inputs"]:
            check(j)

    check(node_id)

    def f(params, x):
        memo = {}

        def value(i):
            if i not in memo:
                node = nodes[i]
                if node["op"] == "input":
                    memo[i] = x.reshape([x.shape[0]] + node["shape"])
                elif node["op"] == "param":
                    memo[i] = params[node["param"]]
                elif node["op"] == "constant":
                    memo[i] = jnp.float32(node["attr"][0])
                else:
                    inputs = [value(j) for j in node["inputs"]]
                    first_batched = bool(node["inputs"]) and nodes[node["inputs"][0]]["batched"]
                    memo[i] = ops[node["op"]](node, inputs, first_batched)
            return memo[i]

        return value(node_id)

    return f


def make_step(description, step, jax, jnp):
    """A jitted f(params, state, t, data, rows) -> (params, state, loss): the
    step's loss and gradient on data[rows], then its optimizer, as PyTorch's."""
    ops = make_ops(jnp, jax)
    losses = {loss["name"]: loss["node"] for loss in description["losses"]}
    loss_of = loss_function(description, losses[step["loss"]], ops, jnp)
    names = step["params"]
    if step["optimizer"] not in ("adam", "sgd"):
        raise Unsupported(f"no JAX optimizer for '{step['optimizer']}'")
    # each optimizer's own settings (runtime/aert_optimizers.def)
    lr, beta1, beta2, eps, momentum = (step.get(k, 0) for k in ("lr", "beta1", "beta2", "eps", "momentum"))

    def train_step(params, state, t, data, rows):
        x = data[rows]
        trained = {n: params[n] for n in names}
        loss, grads = jax.value_and_grad(lambda p: loss_of({**params, **p}, x))(trained)
        params, state = dict(params), dict(state)
        for n in names:
            g = grads[n]
            if step["optimizer"] == "adam":  # torch.optim.Adam
                m = beta1 * state["m." + n] + (1 - beta1) * g
                v = beta2 * state["v." + n] + (1 - beta2) * g * g
                step_size = lr / (1 - beta1 ** t)
                denom = jnp.sqrt(v) / jnp.sqrt(1 - beta2 ** t) + eps
                params[n] = params[n] - step_size * m / denom
                state["m." + n], state["v." + n] = m, v
            elif momentum:  # torch.optim.SGD: the buffer starts as the first gradient
                buf = jnp.where(t > 1, momentum * state["b." + n] + g, g)
                params[n] = params[n] - lr * buf
                state["b." + n] = buf
            else:
                params[n] = params[n] - lr * g
        return params, state, loss

    return jax.jit(train_step, donate_argnums=(0, 1))


def initial_state(description, params, jnp):
    """Adam's moments (m., v.) or SGD's momentum buffer (b.) of each trained parameter."""
    state = {}
    for step in description["steps"]:
        keys = ("m.", "v.") if step["optimizer"] == "adam" else ("b.",) if step.get("momentum") else ()
        for n in step["params"]:
            for key in keys:
                state[key + n] = jnp.zeros_like(params[n])
    return state
