/* A benign Linux program for the ELF cross-check: dynamic, a few symbols. */
#include <stdio.h>
#include <math.h>
int nestbox_visible(int x) { return x * 3; }
int main(int argc, char **argv) { printf("%s %f\n", argv[0], sqrt((double)argc)); return nestbox_visible(argc) & 1; }
