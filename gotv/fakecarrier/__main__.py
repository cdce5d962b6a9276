"""`python -m gotv.fakecarrier`: serve the fake carrier."""

from gotv.fakecarrier.web import main

main()
