"""
What keeps a read of a running task's log bounded when an executor's API is slow, down or swamped.

The pieces compose around one read, outermost first:

1. :mod:`.deadline`: every read gets one monotonic :class:`~.deadline.Deadline` (``read_timeout``)
   when the pipeline starts it; every layer below works to it, and says a timeout one way
   (:func:`~.deadline.timed_out`).
2. :mod:`.bulkhead`: at most ``max_concurrent_reads`` reads of one worker process wait on an API at
   once; the rest are answered "busy" after ``slot_wait``. A slot is held until the answer's streams
   are read, closed, or past the deadline.
3. :mod:`.guard`: a reader that cannot keep the deadline itself runs on a thread of its own and is cut
   at the deadline, before it answers and mid-stream; threads left blocked are bounded per reader.
   Readers registered with ``keeps_deadline`` (the Kubernetes reader: its client build and its API
   calls run on threads of their own, waited for only until the deadline) are called inline.
4. :mod:`.coalescing`: identical reads in flight at the same time share one fetch, each waiter with
   its own deadline; the fetch works to the latest of them (:class:`~.deadline.LatestDeadline`).
5. :mod:`.circuit_breaker`: per remote API, after ``breaker_threshold`` transport failures in a row,
   reads are answered at once for ``breaker_cooldown`` seconds, then one probe read is let through.

The pipeline applies 1-3 to every class-level reader; a reader applies 4 and 5 to its own API calls.
"""
