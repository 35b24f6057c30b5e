// retrieve.c — the retrieve command: each query's nearest codes in a
// database (Euclidean, cosine or Hamming on thresholded codes), the
// precision of the neighbours' labels, against the same search on the raw
// inputs (the search itself: analysis/neighbours.c).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "analysis.h"

// aert_knn_search in slices of queries, with a progress line on a terminal
// (each slice reads the database once for its norms, and once a block of
// queries a thread).
static void search(const aert_real *db, size_t n_db, const aert_real *queries, size_t n_q, int d, int k, bool cosine,
                   bool same, uint32_t *neighbours, const char *what) {
  const size_t slice = 2048;
  for (size_t first = 0; first < n_q; first += slice) {
    aert_progress(what, first, n_q);
    size_t m = n_q - first < slice ? n_q - first : slice;
    aert_knn_search(db, n_db, queries + first * (size_t)d, m, d, k, cosine, same ? (long)first : -1,
                    neighbours + first * (size_t)k);
  }
  aert_progress(what, n_q, n_q);
}

int aert_cmd_retrieve(const aert_model *model, const aert_options *options) {
  if (options->binary && options->cosine)
    return aert_error("retrieve: --binary (Hamming distance) and --cosine are two different distances; choose one"),
           AERT_EXIT_USAGE;
  if (options->output && !aert_is_npy_path(options->output)) {
    aert_error("retrieve: -o %s: the neighbours go to a .npy file", options->output);
    return AERT_EXIT_USAGE;
  }
  int k = options->has_k ? options->k : 10;
  if (!aert_need_code(model)) return AERT_EXIT_FAILURE;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  const char *db_spec = options->db ? options->db : model->default_data;
  const char *query_spec = options->queries ? options->queries : model->default_test;
  aert_dataset *db = aert_load_model_data(model, db_spec);
  aert_dataset *queries = db ? aert_load_model_data(model, query_spec) : NULL;
  int status = AERT_EXIT_FAILURE;
  aert_real *db_codes = NULL, *query_codes = NULL;
  uint32_t *neighbours = NULL;
  uint64_t *db_bits = NULL, *query_bits = NULL;
  if (!queries || !aert_fit_context(model, options, ctx, db->n > queries->n ? db->n : queries->n,
                                    db->n > queries->n ? db->path : queries->path))
    goto done;
  if (!db->labels || !queries->labels) {
    aert_error("%s: retrieval precision needs labels, and this data set has none", !db->labels ? db->path : queries->path);
    goto done;
  }
  bool same = strcmp(db_spec, query_spec) == 0;
  size_t n_q = queries->n;
  if (options->has_count && (size_t)options->count < n_q) n_q = (size_t)options->count;
  if ((size_t)k > db->n - (same ? 1 : 0) || n_q == 0) {
    aert_error("retrieve: -k %d needs a database of more than %d samples and at least one query", k, k);
    goto done;
  }
  int dims = model->code_size, words = (dims + 63) / 64;
  // Both searches' neighbours, the codes' then the raw inputs' (-o writes them).
  neighbours = malloc(2 * n_q * (size_t)k * sizeof *neighbours);
  double start = aert_now();
  db_codes = aert_encode_all(model, ctx, db);
  double index_s = aert_now() - start;
  if (!db_codes || !neighbours) goto done;
  // The search time includes encoding the queries: what one more query costs.
  start = aert_now();
  query_codes = aert_alloc_reals(n_q, (size_t)dims, "query codes");
  if (!query_codes) goto done;
  aert_run_batches(ctx, queries->x, queries->sample_size, n_q, model->encode, (size_t)dims, query_codes);
  double code_start = aert_now();
  if (options->binary) {
    db_bits = aert_binary_codes(db_codes, db->n, dims, words);
    query_bits = aert_binary_codes(query_codes, n_q, dims, words);
    if (!db_bits || !query_bits) goto done;
    aert_knn_hamming(db_bits, db->n, query_bits, n_q, words, k, same ? 0 : -1, neighbours);
  } else {
    search(db_codes, db->n, query_codes, n_q, dims, k, options->cosine, same, neighbours, "searching the codes");
  }
  double search_s = aert_now() - start, code_search_s = aert_now() - code_start;
  double precision = aert_precision_at_k(neighbours, n_q, k, db->labels, queries->labels);
  start = aert_now();
  uint32_t *raw_neighbours = neighbours + n_q * (size_t)k;
  search(db->x, db->n, queries->x, n_q, (int)db->sample_size, k, options->cosine, same, raw_neighbours,
         "searching the raw inputs");
  double raw_search_s = aert_now() - start;
  double raw_precision = aert_precision_at_k(raw_neighbours, n_q, k, db->labels, queries->labels);
  const size_t shape[3] = {2, n_q, (size_t)k};
  if (options->output && !aert_write_npy(options->output, "the neighbours", "<u4", shape, 3, neighbours, sizeof *neighbours))
    goto done;
  fprintf(stderr, "%s: %zu queries against %zu samples, k = %d\n", aert_program(), n_q, db->n, k);
  fprintf(stderr, "  %-34s %12s %12s\n", "", "precision", "search s");
  char what[64];
  const char *metric = options->cosine ? "cosine" : "Euclidean";
  snprintf(what, sizeof what, "codes (%d values, %s)", dims, options->binary ? "Hamming on bits" : metric);
  fprintf(stderr, "  %-34s %12.4f %12.3f\n", what, precision, search_s);
  snprintf(what, sizeof what, "raw input (%zu values, %s)", db->sample_size, metric);
  fprintf(stderr, "  %-34s %12.4f %12.3f\n", what, raw_precision, raw_search_s);
  double speedup = raw_search_s / fmax(search_s, 1e-9);
  fprintf(stderr, "  encoding the database took %.3f s (not counted); the codes search %.1fx %s\n", index_s,
          speedup >= 1 ? speedup : 1 / fmax(speedup, 1e-9), speedup >= 1 ? "faster" : "slower");
  printf("precision@%d %.6g\nraw_precision@%d %.6g\nsearch_s %.6g\nraw_search_s %.6g\ncode_search_s %.6g\n", k,
         precision, k, raw_precision, search_s, raw_search_s, code_search_s);
  status = AERT_EXIT_OK;
done:
  aert_free(db_codes), aert_free(query_codes);
  free(neighbours), free(db_bits), free(query_bits);
  aert_dataset_free(db), aert_dataset_free(queries);
  aert_ctx_free(model, ctx);
  return status;
}
