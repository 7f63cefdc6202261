"""Uploaded files: POST /files/upload, GET /files/{id}/preview, and ``files`` of a chat message.

Files belong to the app they were uploaded through (Dify: to the workspace; parlour has no
workspaces, so the app is the tenant). A file can be previewed once it is attached to a message
of the calling app, as in Dify.
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.config import Settings
from parlour.errors import FileAccessDenied, FileNotFound, FileTooLarge, InvalidParam
from parlour.services.apps import AppContext
from parlour.services.end_users import EndUsers
from parlour.storage.blobs import BlobStore
from parlour.storage.models import MessageFile, UploadFile, epoch, utcnow

IMAGE = {"jpg", "jpeg", "png", "webp", "gif", "svg"}
VIDEO = {"mp4", "mov", "mpeg", "webm"}
AUDIO = {"mp3", "m4a", "wav", "amr", "mpga"}
DOCUMENT = {
    "txt", "markdown", "md", "mdx", "pdf", "html", "htm", "xlsx", "xls", "vtt", "properties",
    "doc", "docx", "csv", "eml", "msg", "pptx", "xml", "epub", "ppt",
}
FILE_TYPES = ("image", "document", "audio", "video", "custom")
TRANSFER_METHODS = ("remote_url", "local_file")
MB = 1024 * 1024


def file_type_of(extension: str, mime_type: str) -> str:
    """Dify's detection: by extension, then by mime type; anything else is ``custom``."""
    ext = extension.lower().lstrip(".")
    for kind, group in (("image", IMAGE), ("video", VIDEO), ("audio", AUDIO),
                        ("document", DOCUMENT)):
        if ext in group:
            return kind
    for kind in ("image", "video", "audio"):
        if mime_type.startswith(kind + "/"):
            return kind
    return "custom"


def preview_url(upload_file_id: str) -> str:
    return f"/v1/files/{upload_file_id}/preview"


def upload_dict(row: UploadFile) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "size": row.size,
        "extension": row.extension,
        "mime_type": row.mime_type,
        "created_by": row.end_user_id,
        "created_at": epoch(row.created_at),
        "preview_url": None,
        "source_url": preview_url(row.id),
        "original_url": None,
        "user_id": None,
        "tenant_id": None,
        "conversation_id": None,
        "file_key": None,
    }


@dataclass(slots=True)
class FileRef:
    """One validated entry of ``files`` in POST /chat-messages."""

    type: str
    transfer_method: str
    url: str | None
    upload_file_id: str | None
    filename: str
    extension: str
    mime_type: str
    size: int


@dataclass(slots=True)
class Preview:
    name: str
    mime_type: str
    size: int
    chunks: AsyncIterator[bytes]


class Files:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        end_users: EndUsers,
    ):
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.end_users = end_users

    def limit_for(self, extension: str) -> int:
        s = self.settings
        if extension in IMAGE:
            return s.upload_image_file_size_limit * MB
        if extension in VIDEO:
            return s.upload_video_file_size_limit * MB
        if extension in AUDIO:
            return s.upload_audio_file_size_limit * MB
        return s.upload_file_size_limit * MB

    def max_upload(self) -> int:
        s = self.settings
        return MB * max(s.upload_file_size_limit, s.upload_image_file_size_limit,
                        s.upload_video_file_size_limit, s.upload_audio_file_size_limit)

    async def upload(
        self, app: AppContext, user: str | None, filename: str, mime_type: str,
        source: BinaryIO, size: int,
    ) -> dict[str, Any]:
        """Dify's checks after the multipart ones: name, blacklist, size by extension group."""
        filename, mime_type = filename.replace("\x00", ""), mime_type.replace("\x00", "")
        if "/" in filename or "\\" in filename:
            raise InvalidParam("Filename contains invalid characters")
        extension = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
        if len(filename) > 200:
            stem = filename.split(".", 1)[0][:200]
            filename = f"{stem}.{extension}" if extension else stem
            filename = filename[:255]
        blacklist = {e.lower().lstrip(".") for e in self.settings.upload_file_extension_blacklist}
        if extension and extension in blacklist:
            raise InvalidParam(f"File extension '.{extension}' is not allowed for security reasons")
        if size > self.limit_for(extension):
            raise FileTooLarge("File size exceeded. {message}")
        end_user_id = await self.end_users.resolve(app.id, user)
        file_id = str(uuid.uuid4())
        key = f"{app.id}/{file_id}"
        stored = await self.blobs.put(key, source)
        row = UploadFile(
            id=file_id, app_id=app.id, end_user_id=end_user_id, name=filename, size=stored,
            extension=extension[:64], mime_type=mime_type[:255], key=key, created_at=utcnow(),
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return upload_dict(row)

    async def preview(self, app: AppContext, file_id: str) -> Preview:
        """Dify's chain: attached to a message → of this app → upload row → readable."""
        async with self.sessions() as session:
            owners = (await session.scalars(
                select(MessageFile.app_id).where(MessageFile.upload_file_id == file_id)
            )).all()
            if not owners:
                raise FileNotFound("File not found in message context")
            if app.id not in owners:
                raise FileAccessDenied("File access denied: not owned by requesting app")
            row = await session.get(UploadFile, file_id)
        if row is None:
            raise FileNotFound("Upload file record not found")
        if row.app_id != app.id:
            raise FileAccessDenied("File access denied: tenant mismatch")
        try:
            if not await self.blobs.exists(row.key):
                raise FileNotFoundError(row.key)
        except (OSError, ValueError) as exc:
            raise FileNotFound(f"Failed to load file content: {exc}") from exc
        return Preview(row.name, row.mime_type, row.size, self.blobs.read(row.key))

    # --- files in POST /chat-messages --------------------------------------------------------

    async def resolve(self, app: AppContext, files: list[Any] | None) -> list[FileRef]:
        """Dify's ``files`` rules (§2.4); ignored unless the app enables file upload."""
        config = app.config.file_upload or {}
        image = config.get("image") or {}
        if not files or not (config.get("enabled") or image.get("enabled")):
            return []
        refs: list[FileRef] = []
        for entry in files:
            ref = await self._entry(app, entry)
            if ref is not None:
                _check_allowed(config, image, ref)
                refs.append(ref)
        images = sum(1 for r in refs if r.type == "image")
        image_limit = image.get("number_limits")
        if image.get("enabled") and isinstance(image_limit, int) and images > image_limit:
            raise InvalidParam(f"Number of image files exceeds the maximum limit {image_limit}")
        limit = config.get("number_limits", image_limit if image_limit is not None else 3)
        if isinstance(limit, int) and len(refs) > limit:
            raise InvalidParam(f"Number of files exceeds the maximum limit {limit}")
        return refs

    async def _entry(self, app: AppContext, entry: Any) -> FileRef | None:
        if not isinstance(entry, dict) or not entry.get("transfer_method"):
            return None
        method = entry["transfer_method"]
        if method not in TRANSFER_METHODS:
            raise InvalidParam(f"No matching enum found for value '{method}'")
        kind = entry.get("type")
        if kind is not None and kind not in FILE_TYPES:
            raise InvalidParam(f"'{kind}' is not a valid FileType")
        if method == "remote_url":
            url = entry.get("url") or entry.get("remote_url")
            if not isinstance(url, str) or not url:
                return None
            name = unquote(urlparse(url).path.rsplit("/", 1)[-1]) or url
            ext = name.rsplit(".", 1)[1].lower() if "." in name else ""
            mime = mimetypes.guess_type(name)[0] or ""
            detected = file_type_of(ext, mime)
            return FileRef(_kind(kind, detected), method, url, None, name, ext, mime, -1)
        row = await self._upload_of(app, entry.get("upload_file_id"))
        detected = file_type_of(row.extension, row.mime_type)
        return FileRef(_kind(kind, detected), method, None, row.id, row.name, row.extension,
                       row.mime_type, row.size)

    async def _upload_of(self, app: AppContext, value: Any) -> UploadFile:
        if not value:
            raise InvalidParam("Invalid upload file id")
        try:
            file_id = str(uuid.UUID(str(value)))
        except ValueError:
            raise InvalidParam("Invalid upload file id format") from None
        async with self.sessions() as session:
            row = await session.scalar(
                select(UploadFile).where(UploadFile.id == file_id, UploadFile.app_id == app.id)
            )
        if row is None:
            raise InvalidParam("Invalid upload file")
        return row

    async def attach(self, app_id: str, message_id: str, refs: list[FileRef]) -> None:
        """Store the user's files of a message (``belongs_to: user``)."""
        if not refs:
            return
        now = utcnow()
        async with self.sessions.begin() as session:
            await session.execute(insert(MessageFile), [
                {"id": str(uuid.uuid4()), "message_id": message_id, "app_id": app_id,
                 "type": r.type, "transfer_method": r.transfer_method, "url": r.url,
                 "upload_file_id": r.upload_file_id, "belongs_to": "user",
                 "created_at": now + timedelta(microseconds=i)}  # keeps the sent order
                for i, r in enumerate(refs)
            ])


def _kind(given: str | None, detected: str) -> str:
    return detected if given in (None, "custom") else str(given)


def _check_allowed(config: dict[str, Any], image: dict[str, Any], ref: FileRef) -> None:
    """The app's allowed types, extensions and transfer methods (when it lists them)."""
    allowed_types = config.get("allowed_file_types")
    allowed_exts = config.get("allowed_file_extensions")
    methods = config.get("allowed_file_upload_methods")
    ok = True
    if allowed_types and ref.type != "custom" and ref.type not in allowed_types:
        ok = False
    if ref.type == "custom" and allowed_exts is not None:
        exts = {str(e).lower().lstrip(".") for e in allowed_exts}
        ok = ok and ref.extension in exts
    if ref.type == "image" and image.get("transfer_methods"):
        ok = ok and ref.transfer_method in image["transfer_methods"]
    elif ref.type != "image" and methods:
        ok = ok and ref.transfer_method in methods
    if not ok:
        raise InvalidParam(f"File validation failed for file: {ref.filename}")


async def files_of_messages(
    session: AsyncSession, message_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """``message_files`` of GET /messages items, by message id."""
    if not message_ids:
        return {}
    rows = await session.execute(
        select(MessageFile, UploadFile)
        .outerjoin(UploadFile, UploadFile.id == MessageFile.upload_file_id)
        .where(MessageFile.message_id.in_(message_ids))
        .order_by(MessageFile.created_at, MessageFile.id)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for mf, up in rows.all():
        name = up.name if up is not None else unquote(urlparse(mf.url or "").path.rsplit("/")[-1])
        out.setdefault(mf.message_id, []).append({
            "id": mf.id,
            "filename": name,
            "type": mf.type,
            "url": preview_url(up.id) if up is not None else mf.url,
            "mime_type": up.mime_type if up is not None else mimetypes.guess_type(name)[0],
            "size": up.size if up is not None else -1,
            "transfer_method": mf.transfer_method,
            "belongs_to": mf.belongs_to,
            "upload_file_id": mf.upload_file_id,
        })
    return out
