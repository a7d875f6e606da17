# A Put to a key that has a value is lost (executed as an empty Append):
# only the linearizability check sees it (random keys, whose Gets the
# clients cannot check themselves).
s|        size_t at = op == KV_OP_APPEND ? e->len : 0;|        if (op == KV_OP_PUT \&\& e->len > 0)\n            val_len = 0, op = KV_OP_APPEND;\n        size_t at = op == KV_OP_APPEND ? e->len : 0;|
