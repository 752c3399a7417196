"""The service's settings, read from the environment (prefix ``SCORING_``) and passed to ``create_app``."""
from __future__ import annotations

import hashlib
import ipaddress
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scoring.tracking import DEFAULT_NAME, DEFAULT_URI

CHAMPION_URI = DEFAULT_URI


def hash_key(key: str) -> str:
    """How an API key is stored: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Settings(BaseSettings):
    """What the service serves, where it listens and who may call it.

    API keys are given either in clear (``SCORING_API_KEYS=k1,k2``; hashed on reading and never kept)
    or already hashed (``SCORING_API_KEY_HASHES``: SHA-256 hex, e.g. from ``scoring hash-key``).
    """

    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")

    model_uri: str = Field(CHAMPION_URI, description="An MLflow model URI or a bundle file.")
    tracking_uri: str | None = Field(None, description="The MLflow store (default: MLFLOW_TRACKING_URI, else ./mlflow.db).")
    fallback_dir: str = Field("models", description="Where `scoring train` exports the champion, served when the "
                                                    "store cannot be reached at start.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key_hashes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False,
                                                     description="Keys in clear; kept only as their hashes.")
    allow_open_network: bool = Field(False, description="Listen beyond loopback without API keys (not advised).")
    max_deals: int = Field(10_000, ge=1, description="Most deals in one request (413 beyond).")
    max_body_bytes: int = Field(20_000_000, ge=1024, description="Largest request body (413 beyond).")
    poll_seconds: float = Field(30.0, ge=0, description="How often to look for a new champion (0: never).")
    store_timeout_seconds: float = Field(10.0, gt=0, description="How long the first lookup in the tracking store "
                                         "may take before the exported bundle is served instead (the lookup goes on "
                                         "in the background and swaps the champion in when it answers).")
    workers: int = Field(1, ge=1, le=64, description="Server processes, each with the model loaded, answering "
                         "requests side by side (one per core for callers that send batches at once); their "
                         "Prometheus metrics are summed.")
    threads: int = Field(1, ge=1, le=64, description="Worker threads for validation and scoring, off the event loop "
                                                     "(more let small requests overtake a large batch, at some cost "
                                                     "in throughput).")
    cache_dir: str | None = Field(None, description="Where compiled boosters are cached (default: "
                                  "$XDG_CACHE_HOME/pipeline-scoring/compiled).")
    access_log: bool = Field(True, description="Log a line per request (uvicorn's access log).")
    store_url: str | None = Field(None, description="The pipeline store (default: ./pipeline.db, SQLite).")
    snapshot_seconds: float = Field(3600.0, ge=0, description="How often to check that today's forecast snapshot "
                                    "is stored (0: never).")
    session_hours: float = Field(12.0, gt=0, description="How long a login to the managers' page lasts.")

    @field_validator("api_key_hashes", "api_keys", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """Comma-separated keys; a blank one (``SCORING_API_KEYS=' '``, ``a,,b``) is refused: it would leave the
        service open without anyone meaning it."""
        if isinstance(value, str):
            if not value:  # unset
                return []
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list) and any(not str(part).strip() for part in value):
            raise ValueError("blank API key: every key must have characters")
        return value

    @field_validator("api_key_hashes")
    @classmethod
    def _hex(cls, value: list[str]) -> list[str]:
        for item in value:
            if len(item) != 64 or any(c not in "0123456789abcdef" for c in item.lower()):
                raise ValueError("API key hashes must be SHA-256 hex digests (64 characters)")
        return [item.lower() for item in value]

    @field_validator("api_keys")
    @classmethod
    def _hash_keys(cls, value: list[str]) -> list[str]:
        return [hash_key(k) for k in value]  # the clear keys are not kept

    def key_hashes(self) -> frozenset[str]:
        """Every accepted key, hashed."""
        return frozenset([*self.api_key_hashes, *self.api_keys])

    @property
    def model_name(self) -> str:
        """The registered model's name (for the fallback file and polling), from ``model_uri``."""
        if self.model_uri.startswith("models:/"):
            return self.model_uri.removeprefix("models:/").split("@")[0].split("/")[0]
        return DEFAULT_NAME

    def check_exposure(self) -> None:
        """Refuse to listen beyond loopback without API keys, unless told so explicitly."""
        if self.key_hashes() or self.allow_open_network or is_loopback(self.host):
            return
        raise ValueError(f"refusing to listen on {self.host} without API keys: anyone who can reach it could read "
                         "your pipeline. Set SCORING_API_KEYS (or SCORING_API_KEY_HASHES), listen on 127.0.0.1, or "
                         "set SCORING_ALLOW_OPEN_NETWORK=true if something in front of it checks callers.")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
