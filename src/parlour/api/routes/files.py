"""POST /files/upload and GET /files/{file_id}/preview."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from parlour.api.deps import CurrentApp, path_uuid, user_of
from parlour.api.forms import field, multipart, multipart_doc, the_file
from parlour.api.schemas.media import UploadedFile, binary, created
from parlour.errors import (
    FilenameNotExists,
    FileNotFound,
    FileTooLarge,
    InvalidParam,
    UnsupportedFileType,
)

router = APIRouter(tags=["files"])

UPLOAD_DOC = multipart_doc(
    {"file": {"type": "string", "format": "binary"}, "user": {"type": "string"}}, ["file"]
)
RANGES = {
    "audio/mpeg", "audio/wav", "audio/mp4", "audio/ogg", "audio/flac", "audio/aac",
    "video/mp4", "video/webm", "video/quicktime", "audio/x-m4a",
}
HTML = {"text/html", "application/xhtml+xml"}
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


@router.post("/files/upload", openapi_extra=UPLOAD_DOC, response_model=None,
             responses=created(UploadedFile))
async def upload_file(request: Request, app: CurrentApp) -> Response:
    files = request.app.state.files
    async with multipart(request, files.max_upload(), FileTooLarge()) as form:
        upload = the_file(form)
        if not upload.content_type:
            raise UnsupportedFileType()
        if not upload.filename:
            raise FilenameNotExists()
        user = user_of(field(form, "user"), required=False)
        body = await files.upload(
            app, user, upload.filename, upload.content_type, upload.file, upload.size or 0
        )
    return JSONResponse(body, status_code=201)


@router.get("/files/{file_id}/preview", response_model=None,
            responses=binary("application/octet-stream", "image/png", "image/jpeg", "*/*"))
async def preview_file(
    file_id: str, request: Request, app: CurrentApp, as_attachment: str | None = None,
    user: str | None = None,
) -> Response:
    flag = (as_attachment or "").strip().lower()
    if flag not in TRUE | FALSE:
        raise InvalidParam("as_attachment must be a boolean")
    preview = await request.app.state.files.preview(app, path_uuid(file_id, FileNotFound))
    headers = {"Cache-Control": "public, max-age=3600"}
    if preview.size > 0:
        headers["Content-Length"] = str(preview.size)
    media_type = preview.mime_type or "application/octet-stream"
    if media_type in RANGES:
        headers["Accept-Ranges"] = "bytes"
    html = media_type in HTML or preview.name.lower().endswith((".html", ".htm"))
    if flag in TRUE or html:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(preview.name)}"
        media_type = "application/octet-stream"
    if html:
        headers["X-Content-Type-Options"] = "nosniff"
    return StreamingResponse(preview.chunks, media_type=media_type, headers=headers)
