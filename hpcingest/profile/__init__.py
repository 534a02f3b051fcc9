"""`hpcingest profile`: per-rank activity timelines (recorder, on-disk format) and their renderings."""
