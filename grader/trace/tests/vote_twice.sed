# A classic bug for the pictures' checks: a vote is granted to every
# candidate of the term that asks, even after voting for another one.
/^    if (!pre_vote && term == rf->current_term &&$/{
N
s/ &&\n        (rf->voted_for == -1 || rf->voted_for == candidate)) {/) { \/* votes twice *\//
}
