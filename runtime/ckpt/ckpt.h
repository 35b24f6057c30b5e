// ckpt.h — checkpoints (runtime/ckpt/), above core: safetensors files
// written and read by checkpoint.c (aert_checkpoint_save and _load: aert.h).
#ifndef AERT_CKPT_H
#define AERT_CKPT_H

#include "core.h"

// aert_checkpoint_load, saying "optimizer state absent" on stderr only when
// `want_optimizer` (train --resume).
int aert_checkpoint_load_ex(const char *path, const aert_model *model, aert_ctx *ctx,
                            aert_progress_state *state, bool want_optimizer);
// The same from a checkpoint's bytes in memory (aec --lib --weights), which
// messages call `name`.
int aert_checkpoint_load_memory(const void *data, size_t size, const char *name, const aert_model *model,
                                aert_ctx *ctx);
// "optimizer.<loss>" for step s ("optimizer.step<s>" when two steps share a loss).
void aert_optimizer_key(const aert_model *model, int step, char *out, size_t size);

#endif
