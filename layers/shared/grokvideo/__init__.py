"""grokvideo: track xAI Grok video jobs (through CometAPI) to the end and archive them in S3.

Modules, one concern each:

- ``config``     settings read once from the function's environment
- ``models``     job states, failure reasons, the normalised provider status
- ``errors``     the error types every module raises (and nothing else escapes)
- ``validation`` input checks for request ids and event fields
- ``cometapi``   HTTP client over one urllib3 PoolManager
- ``status``     parser: every response shape CometAPI sends -> one ``PollStatus``
- ``jobs``       job store over DynamoDB (register, due index, claim, transition, outbox)
- ``events``     output event details and the EventBridge publisher
- ``contract``   typed models (TypedDicts) of every event detail, input and output, as in ``schemas/``
- ``schedule``   when to poll a pending job again: around the finish its progress forecasts
- ``backoff``    when to poll again after an error: exponential backoff with jitter
- ``sweep``      the poller: claim due jobs, poll them concurrently, transition, publish
- ``urlguard``   what a video download may connect to
- ``archive``    streaming copy of a finished video into S3
- ``cli``        the ``grokvideo`` command (``pip install .``), not shipped in the layer
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
