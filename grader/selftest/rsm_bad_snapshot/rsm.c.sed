# The state machine is given a snapshot one byte short to restore: the
# harness must name it (bytes the counter never made), not crash decoding it.
s|    if (r->sm.restore(r->sm.ctx, (const uint8_t \*)snap + (len - rest), rest) != 0)|    if (r->sm.restore(r->sm.ctx, (const uint8_t *)snap + (len - rest), rest ? rest - 1 : 0) != 0)|
