// passes.h — the passes over the graph, in the order main.c runs them:
// autodiff, inference, then for each generated function a schedule, fusion
// and a memory plan (plan.c puts them together: a ProgramPlan is everything
// the code generator and the inspection tools read). Above front/.
#ifndef AEC_PASSES_H
#define AEC_PASSES_H

#include "front.h"

// ------------------------------------------------------------ autodiff.c
// Adds backward nodes for each step: the gradient of its loss with respect
// to each parameter of its nets (Step.grad_nodes). Returns false after
// reporting a step whose loss depends on none of a named net's parameters.
bool autodiff(Graph *graph);

// ----------------------------------------------------------- inference.c
// Adds the inference versions of the losses (Graph.eval_losses), the code,
// the reconstruction and each layer's output (Graph.layer_eval_nodes):
// corruption replaced by its input.
void plan_inference(Graph *graph);

// ---------------------------------------------------------- schedule.c
Schedule schedule_for(const Graph *graph, const int *outputs, int n_outputs);
void schedule_free(Schedule *schedule);

// ------------------------------------------------------------- fuse.c
// `outputs` must be written to memory; `fuse` false gives one group per node.
FusionPlan fuse_schedule(const Graph *graph, const Schedule *schedule, const int *outputs, int n_outputs, bool fuse);
bool group_materializes(const Group *group, int node);
void fusion_plan_free(FusionPlan *plan);

// ----------------------------------------------------------- memory.c
// `pinned` values live to the end (the schedule's outputs); `scratch_size`
// gives each group's scratch need in elements (0 for none).
// `outside` (or NULL) marks values stored elsewhere (weight gradients).
MemoryPlan plan_memory(const Graph *graph, const FusionPlan *plan, const int *pinned, int n_pinned,
                       const bool *outside, const size_t *scratch_size, bool reuse);
void memory_plan_free(MemoryPlan *plan);

// ------------------------------------------------------------ share.c
// `enable` false (-O0) shares nothing.
SharePlan plan_sharing(const Graph *graph, bool enable);
void share_plan_free(SharePlan *plan);
bool share_step_reads(const SharePlan *plan, int step);
// schedule_for, treating `given` values as computed elsewhere: neither they
// nor what only they need are scheduled.
Schedule schedule_given(const Graph *graph, const int *outputs, int n_outputs, const bool *given);

// ------------------------------------------------------------- plan.c
// One generated function (a step's forward and backward, evaluation,
// encode, reconstruct, corrupt, layer_output): its schedule, fusion groups,
// memory, and the kernel each group calls.
typedef struct FunctionPlan {
  const char *name;   // the C function: recon_loss_and_grad, eval_losses, encode, ...
  const char *role;   // what --stats calls it: "step recon", "eval", "encode", ...
  int step;           // the step it computes the gradients of, or -1
  Schedule schedule;
  FusionPlan fusion;
  MemoryPlan memory;
  bool *outside;      // [n_nodes] values stored outside the arena (weight gradients, shared values)
  char **kernel;      // [n_groups] the kernel each group calls
  int *kernel_index;  // [n_groups] its index in the model's kernel table
  size_t *scratch;    // [n_groups] scratch elements each group needs
  const bool *given;  // [n_nodes] values earlier steps of the batch left in shared slots (share.c), or NULL
  const bool *stored; // [n_nodes] values it writes to shared slots, or NULL
  int input_node;     // decode: the value the function's `input` holds (not computed; `given` marks it), else -1
} FunctionPlan;

// The kernels of a program: one per distinct group, named, in the order they
// first run; each records the group it computes (in one function's plan).
typedef struct KernelPlan {
  char *signature, *name;
  const Group *group;
  double flops_per_sample, flops_per_call;
  int line;
  bool is_gemm;
} KernelPlan;

typedef struct ProgramPlan {
  Graph *graph;
  bool optimize;
  int n_functions;          // steps, then eval, reconstruct, encode, corrupt, layer_output, decode, eval_loss_parts
  FunctionPlan **functions; // [n_functions] (NULL: the model has no such value)
  FunctionPlan **shared_inputs;  // [n_steps] a step's shared inputs computed afresh, or NULL
  SharePlan share;
  bool *used;               // [n_nodes] computed by some function (gets a shape constant)
  size_t arena_per_sample, arena_fixed;
  KernelPlan *kernels;
  int n_kernels;
  StrMap kernel_by_signature, kernel_by_name;  // each to its index in kernels
  bool fits;                // the training memory fits this machine (else reported)
} ProgramPlan;

// Plans every generated function of the program (after autodiff and
// plan_inference). `dtype` sizes the memory check.
ProgramPlan *plan_program(Graph *graph, int opt_level, DType dtype);
void program_plan_free(ProgramPlan *plan);
// The prefix of a step's functions: its loss's name, with the step's number
// when another step minimizes the same loss.
const char *step_name(const Graph *graph, int step, char *buf, size_t size);
// The param whose gradient a step's node is, or -1.
int gradient_param(const Graph *graph, int step, int node);

#endif
