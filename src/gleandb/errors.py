"""Error classes, named and shaped as chromadb's (``chromadb.errors``).

A leaf module: it imports only the standard library, so every layer (storage, index,
engine, retrieval, api) raises these without importing upward. ``gleandb.errors``
mirrors ``chromadb.errors`` so ``from chromadb.errors import X`` ports unchanged;
``gleandb.api.errors`` re-exports it for older imports.

Code written for chromadb catches these by name, so the class names, ``name()``
and ``code()`` follow chromadb 1.5.9. Client-side validation raises plain
``ValueError`` / ``TypeError`` exactly where chromadb does; the classes below are
what the engine raises (chromadb's in-process engine raises the same ones).
"""

from __future__ import annotations


class ChromaError(Exception):
    """Base of every gleandb/chromadb engine error."""

    trace_id: str | None = None

    def code(self) -> int:
        return 500

    def message(self) -> str:
        return ", ".join(str(a) for a in self.args)

    @classmethod
    def name(cls) -> str:
        return "ChromaError"


class InvalidDimensionException(ChromaError):
    @classmethod
    def name(cls) -> str:
        return "InvalidDimension"

    def code(self) -> int:
        return 400


class InvalidArgumentError(ChromaError):
    def code(self) -> int:
        return 400

    @classmethod
    def name(cls) -> str:
        return "InvalidArgumentError"


class IDAlreadyExistsError(ChromaError):
    def code(self) -> int:
        return 409

    @classmethod
    def name(cls) -> str:
        return "IDAlreadyExists"


class DuplicateIDError(ChromaError):
    def code(self) -> int:
        return 400

    @classmethod
    def name(cls) -> str:
        return "DuplicateID"


class InvalidUUIDError(ChromaError):
    def code(self) -> int:
        return 400

    @classmethod
    def name(cls) -> str:
        return "InvalidUUID"


class InvalidHTTPVersion(ChromaError):
    @classmethod
    def name(cls) -> str:
        return "InvalidHTTPVersion"


class AuthorizationError(ChromaError):
    def code(self) -> int:
        return 401

    @classmethod
    def name(cls) -> str:
        return "AuthorizationError"


class NotFoundError(ChromaError):
    def code(self) -> int:
        return 404

    @classmethod
    def name(cls) -> str:
        return "NotFoundError"


class UniqueConstraintError(ChromaError):
    def code(self) -> int:
        return 409

    @classmethod
    def name(cls) -> str:
        return "UniqueConstraintError"


class BatchSizeExceededError(ChromaError):
    def code(self) -> int:
        return 413

    @classmethod
    def name(cls) -> str:
        return "BatchSizeExceededError"


class VersionMismatchError(ChromaError):
    def code(self) -> int:
        return 500

    @classmethod
    def name(cls) -> str:
        return "VersionMismatchError"


class InternalError(ChromaError):
    def code(self) -> int:
        return 500

    @classmethod
    def name(cls) -> str:
        return "InternalError"


class RateLimitError(ChromaError):
    def code(self) -> int:
        return 429

    @classmethod
    def name(cls) -> str:
        return "RateLimitError"


class QuotaError(ChromaError):
    def code(self) -> int:
        return 400

    @classmethod
    def name(cls) -> str:
        return "QuotaError"


class ChromaAuthError(ChromaError):
    def code(self) -> int:
        return 403

    @classmethod
    def name(cls) -> str:
        return "AuthError"

    def message(self) -> str:
        return "Forbidden"


# gleandb-specific errors (not in chromadb). They subclass ChromaError so that
# code catching chromadb's base class still catches them.


class StoreLockedError(ChromaError):
    """A second process tried to open a persistent directory another process writes."""

    def code(self) -> int:
        return 409

    @classmethod
    def name(cls) -> str:
        return "StoreLockedError"


class CorruptStoreError(ChromaError):
    """A file the store needs is missing or fails its checksum."""

    @classmethod
    def name(cls) -> str:
        return "CorruptStoreError"


class InsufficientStorageError(ChromaError):
    """The disk holding the store is full: the write was not applied (reads keep working).
    Over HTTP: 507 Insufficient Storage, body ``{"error": "ChromaError", ...}`` so chromadb's
    client raises its ChromaError with the message."""

    def code(self) -> int:
        return 507

    @classmethod
    def name(cls) -> str:
        return "InsufficientStorageError"


class ReadOnlyStoreError(ChromaError):
    """A write reached a store opened read-only (a query node following the writer's files):
    nothing was written. Over HTTP: 405, naming the role and where writes go."""

    def code(self) -> int:
        return 405

    @classmethod
    def name(cls) -> str:
        return "ReadOnlyStoreError"


class DeadlineExceededError(ChromaError):
    """A read ran past its deadline (``gleandb.deadline``; the server's request timeout)
    and was stopped; nothing was changed."""

    def code(self) -> int:
        return 504

    @classmethod
    def name(cls) -> str:
        return "DeadlineExceededError"


class WriterFencedError(StoreLockedError):
    """Another writer holds the store on object storage: a conditional write (``If-None-Match``
    on a manifest, catalog record or WAL object, ``If-Match`` on the lease) found it first, or
    this writer can no longer prove it holds the lease. The write was not applied and this
    writer accepts no more writes; reopen the store (after the other writer stops) to continue."""

    def code(self) -> int:
        return 409

    @classmethod
    def name(cls) -> str:
        return "WriterFencedError"


class ObjectStoreUnavailableError(ChromaError):
    """The object store did not answer a request (after retries): a write that raises this was
    not applied; reads can be retried."""

    def code(self) -> int:
        return 503

    @classmethod
    def name(cls) -> str:
        return "ObjectStoreUnavailableError"


error_types: dict[str, type[ChromaError]] = {
    "InvalidDimension": InvalidDimensionException,
    "InvalidArgumentError": InvalidArgumentError,
    "IDAlreadyExists": IDAlreadyExistsError,
    "DuplicateID": DuplicateIDError,
    "InvalidUUID": InvalidUUIDError,
    "InvalidHTTPVersion": InvalidHTTPVersion,
    "AuthorizationError": AuthorizationError,
    "NotFoundError": NotFoundError,
    "BatchSizeExceededError": BatchSizeExceededError,
    "VersionMismatchError": VersionMismatchError,
    "RateLimitError": RateLimitError,
    "AuthError": ChromaAuthError,
    "UniqueConstraintError": UniqueConstraintError,
    "QuotaError": QuotaError,
    "InternalError": InternalError,
    "StoreLockedError": StoreLockedError,
    "CorruptStoreError": CorruptStoreError,
    "InsufficientStorageError": InsufficientStorageError,
    "DeadlineExceededError": DeadlineExceededError,
    "ReadOnlyStoreError": ReadOnlyStoreError,
    "WriterFencedError": WriterFencedError,
    "ObjectStoreUnavailableError": ObjectStoreUnavailableError,
    # Catch-all for any other errors
    "ChromaError": ChromaError,
}
