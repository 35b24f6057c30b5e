// strmap.c — a map from strings to ints (open addressing, at most half
// full), for the lookups that a file of 100k statements makes 100k times:
// the scopes' names (front/scope.c), the kernels' signatures and names
// (passes/plan.c). Keys are not copied.
#include <stdlib.h>
#include <string.h>

#include "ir.h"

uint64_t hash_bytes(const void *data, size_t size, uint64_t h) {
  const unsigned char *p = data;
  for (size_t i = 0; i < size; i++) h = (h ^ p[i]) * 1099511628211ull;
  h ^= h >> 33, h *= 0xff51afd7ed558ccdull, h ^= h >> 33;
  return h;
}

static size_t key_hash(const char *s) { return (size_t)hash_bytes(s, strlen(s), HASH_SEED); }

static size_t slot_of(const StrMap *map, const char *key) {
  size_t mask = map->cap - 1, i = key_hash(key) & mask;
  while (map->keys[i] && strcmp(map->keys[i], key) != 0) i = (i + 1) & mask;
  return i;
}

int strmap_get(const StrMap *map, const char *key) {
  if (!map->cap) return -1;
  size_t i = slot_of(map, key);
  return map->keys[i] ? map->values[i] : -1;
}

void strmap_put(StrMap *map, const char *key, int value) {
  if ((map->n + 1) * 2 > map->cap) {
    StrMap bigger = {.cap = map->cap ? map->cap * 2 : 64};
    bigger.keys = calloc(bigger.cap, sizeof *bigger.keys);
    bigger.values = malloc(bigger.cap * sizeof *bigger.values);
    if (!bigger.keys || !bigger.values) fputs("aec: out of memory\n", stderr), exit(1);
    for (size_t i = 0; i < map->cap; i++)
      if (map->keys[i]) strmap_put(&bigger, map->keys[i], map->values[i]);
    strmap_free(map);
    *map = bigger;
  }
  size_t i = slot_of(map, key);
  if (!map->keys[i]) map->keys[i] = key, map->n++;
  map->values[i] = value;
}

void strmap_free(StrMap *map) {
  free(map->keys);
  free(map->values);
  *map = (StrMap){0};
}
