"""`python -m gotv.fakecarrier`: serve the fake carrier."""

from gotv.fakecarrier.server import main

main()
