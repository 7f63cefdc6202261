"""Settings, read once from the environment (``PARLOUR_*``) and an optional ``.env`` file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelPrice(BaseModel):
    """Price of one model, as Dify reports it: ``tokens * unit_price * price_unit``."""

    prompt_unit_price: Decimal = Decimal("0")
    completion_unit_price: Decimal = Decimal("0")
    price_unit: Decimal = Decimal("0.001")
    currency: str = "USD"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLOUR_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str = ""  # default: sqlite+aiosqlite:///<data_dir>/parlour.db
    database_schema: str = ""  # PostgreSQL: keep parlour's tables in this schema
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 5001
    workers: int = 1
    log_level: str = "info"

    default_model: str = "local:smollm2"
    # OpenAI-compatible endpoint; the SDK's own OPENAI_BASE_URL / OPENAI_API_KEY also work.
    openai_base_url: str = ""
    openai_api_key: str = ""
    openai_timeout: float = 1200.0  # a non-streamed answer's limit (titles); the SDK's timeout
    # the lean HTTP/1.1 client ("aiohttp", its former name, means the same), or the openai SDK
    openai_client: Literal["http", "aiohttp", "sdk"] = "http"
    # knowledge: embedding model of new knowledge bases (local:all-MiniLM-L6-v2-q8, the packaged
    # model with integer kernels; local:all-MiniLM-L6-v2, the packaged model as is; openai:MODEL);
    # the endpoint defaults to the OpenAI settings above
    embedding_model: str = "local:all-MiniLM-L6-v2-q8"
    embedding_base_url: str = ""
    embedding_api_key: str = ""
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # uploads (Dify's limits in MB, inclusive) and extensions refused outright
    upload_file_size_limit: int = 15
    upload_image_file_size_limit: int = 10
    upload_video_file_size_limit: int = 100
    upload_audio_file_size_limit: int = 50
    upload_file_extension_blacklist: list[str] = Field(default_factory=list)
    # speech: an OpenAI-compatible endpoint (/audio/transcriptions, /audio/speech); without
    # a base URL, audio-to-text and text-to-audio answer provider_not_initialize
    speech_base_url: str = ""
    speech_api_key: str = ""
    speech_to_text_model: str = "whisper-1"
    text_to_speech_model: str = "tts-1"
    text_to_speech_voice: str = "alloy"  # when the app names no voice
    speech_timeout: float = 120.0

    # embedded model
    local_threads: int = 2
    local_context: int = 2048
    local_queue: int = 16  # requests waiting for the embedded model before 503
    local_max_tokens: int = 512  # answer length when the app sets no max_tokens

    max_body_bytes: int = 1_048_576
    ping_interval: float = 10.0
    # active requests per app: the app's own limit, else this default; capped by the max
    app_default_active_requests: int = 0  # 0 = unlimited
    app_max_active_requests: int = 0  # 0 = no cap
    end_user_rpm: int = 0  # requests per minute per end user; 0 = unlimited
    # waiting on the model: first token, between tokens, and the whole run (Dify's 1200 s cap)
    upstream_connect_timeout: float = 10.0
    first_token_timeout: float = 300.0
    token_timeout: float = 120.0
    max_execution_time: float = 1200.0
    shutdown_grace: float = 30.0  # seconds open streams get to finish on SIGTERM
    # after start-up, move every object made so far out of the cyclic collector's sight, so
    # its full passes under load do not walk the code, models and app they will never free
    gc_freeze: bool = True
    # net allocations between collections of the youngest generation (Python's default: 700).
    # Under load each stream keeps hundreds of objects for its second or so; at 700 they were
    # walked again and again and moved up, and collections took about 8% of the event loop
    gc_young: int = 10_000
    create_demo_app: bool = True
    db_pool_size: int = 10
    db_timeout: float = 10.0  # PostgreSQL: connect, each statement, and waiting for the pool

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'parlour.db'}"

    def price_for(self, model: str) -> ModelPrice:
        return self.model_prices.get(model) or ModelPrice()
