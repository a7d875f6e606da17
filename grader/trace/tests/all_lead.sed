# For a failing run in real time that fails every time: every server says
# it leads, so the first look at the cluster sees two leaders of one term.
s/^    \*is_leader = rf->role == LEADER;$/    *is_leader = true; \/* every server claims to lead *\//
