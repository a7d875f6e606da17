# The duplicate table is kept but never consulted: a retried Append (its
# reply lost on an unreliable network) is executed twice.
s|    if (seq > dup->seq) { /\* else a retry of one already executed \*/|    if (1) { /* every retry executed again */|
