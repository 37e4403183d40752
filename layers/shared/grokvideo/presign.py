"""Short-lived presigned GET URLs: how the provider reads an input that lives in S3.

Use (needs AWS or the provider, so not a doctest)::

    S3Presigner(boto3.client("s3")).presign(S3Location("my-inputs", "cat.png"))
    # -> 'https://my-inputs.s3.amazonaws.com/cat.png?X-Amz-Algorithm=...'

The URL is a credential: it is handed to the provider and nowhere else (never logged, stored or
put in an event; the job record keeps the ``s3://`` URI).
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from grokvideo.validation import S3Location

PRESIGN_SECONDS = 3600  # long enough for the provider to fetch a queued job's input, short enough to expire today
SIGNING = Config(signature_version="s3v4")  # SigV4: what every region accepts, and an expiry the URL states


class S3Presigner:
    def __init__(self, s3: Any, *, expires_in: int = PRESIGN_SECONDS) -> None:
        self._s3 = s3
        self.expires_in = expires_in

    def presign(self, location: S3Location) -> str:
        """A GET URL for ``location``, signed with the function's own credentials (no call is made)."""
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": location.bucket, "Key": location.key}, ExpiresIn=self.expires_in
            )
        )
