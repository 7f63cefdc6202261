"""POST /files/upload, GET /files/{id}/preview and `files` in POST /chat-messages."""

from __future__ import annotations

import httpx

from tests.api.helpers import auth, second_app, set_config
from tests.conftest import Server

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
IMAGES_ON = {"image": {"enabled": True, "number_limits": 3,
                       "transfer_methods": ["remote_url", "local_file"]}}


async def upload(
    server: Server, name: str = "cat.png", data: bytes = PNG, mime: str | None = "image/png",
    user: str = "alice", key: str | None = None,
) -> httpx.Response:
    if mime is None or not name:  # no part Content-Type / empty filename: httpx cannot
        ctype = f"\r\nContent-Type: {mime}" if mime else ""
        body = (f'--b\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
                f"{ctype}\r\n\r\n").encode() + data + b"\r\n--b--\r\n"
        headers = {**server.auth(key), "Content-Type": "multipart/form-data; boundary=b"}
        return await server.client.post("/v1/files/upload", content=body, headers=headers)
    return await server.client.post(
        "/v1/files/upload", files={"file": (name, data, mime)}, data={"user": user},
        headers=server.auth(key),
    )


async def test_upload_answers_201_with_dify_shape_and_stores_the_bytes(server: Server) -> None:
    r = await upload(server, "Cat.PNG")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "Cat.PNG" and body["extension"] == "png"
    assert body["size"] == len(PNG) and body["mime_type"] == "image/png"
    assert isinstance(body["created_at"], int) and body["created_by"]
    for key in ("preview_url", "original_url", "user_id", "conversation_id", "file_key"):
        assert body[key] is None
    stored = server.settings.data_dir / "files" / server.app_id / body["id"]
    assert stored.read_bytes() == PNG


async def test_upload_errors_in_difys_order(server: Server) -> None:
    h = server.auth()
    c = server.client
    r = await c.post("/v1/files/upload", data={"user": "alice"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "no_file_uploaded")
    r = await c.post("/v1/files/upload", json={"user": "alice"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "no_file_uploaded")
    r = await c.post("/v1/files/upload", headers=h, files={
        "file": ("a.txt", b"a", "text/plain"), "other": ("b.txt", b"b", "text/plain")})
    assert (r.status_code, r.json()["code"]) == (400, "too_many_files")
    r = await upload(server, "a.txt", b"a", None)
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_file_type")
    r = await upload(server, "", b"a", "text/plain")
    assert r.json() == {"code": "filename_not_exists_error",
                        "message": "The specified filename does not exist.", "status": 400}
    r = await upload(server, "a\\b.txt", b"a", "text/plain")
    assert r.json()["message"] == "Filename contains invalid characters"
    big = b"x" * (10 * 1024 * 1024 + 1)
    r = await upload(server, "big.png", big, "image/png")
    assert (r.status_code, r.json()["code"]) == (413, "file_too_large")
    r = await upload(server, "big.txt", big, "text/plain")  # 15 MB for other files
    assert r.status_code == 201
    r = await upload(server, "noext", b"x", "application/octet-stream")
    assert r.status_code == 201 and r.json()["extension"] == ""
    long = "n" * 250 + ".tar.gz"
    r = await upload(server, long, b"x", "application/gzip")
    assert r.json()["name"] == "n" * 200 + ".gz"


async def test_blacklisted_extension(server: Server) -> None:
    server.state.files.settings.upload_file_extension_blacklist = ["EXE"]
    r = await upload(server, "run.exe", b"MZ", "application/octet-stream")
    assert r.status_code == 400
    assert r.json()["message"] == "File extension '.exe' is not allowed for security reasons"


async def test_files_in_chat_are_recorded_listed_and_previewable(server: Server) -> None:
    fid = (await upload(server)).json()["id"]
    files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": fid},
             {"transfer_method": "remote_url", "url": "https://example.com/a/dog.jpg"}]
    # feature off: ignored silently
    r = await server.chat("look", files=files)
    assert r.status_code == 200
    h, c = server.auth(), server.client
    r = await c.get(f"/v1/files/{fid}/preview", headers=h)
    assert (r.status_code, r.json()["code"]) == (404, "file_not_found")
    assert r.json()["message"] == "File not found in message context"
    await set_config(server, file_upload=IMAGES_ON)
    r = await server.chat("look", files=files)
    assert r.status_code == 200, r.text
    cid = r.json()["conversation_id"]
    page = (await c.get("/v1/messages", params={"user": "alice", "conversation_id": cid},
                        headers=h)).json()
    mf = page["data"][0]["message_files"]
    assert [(f["type"], f["transfer_method"], f["belongs_to"]) for f in mf] == [
        ("image", "local_file", "user"), ("image", "remote_url", "user")]
    assert mf[0]["upload_file_id"] == fid and mf[0]["url"] == f"/v1/files/{fid}/preview"
    assert mf[1]["url"] == "https://example.com/a/dog.jpg" and mf[1]["filename"] == "dog.jpg"
    r = await c.get(f"/v1/files/{fid}/preview", headers=h)
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["content-length"] == str(len(PNG))
    r = await c.get(f"/v1/files/{fid}/preview", params={"as_attachment": "true"}, headers=h)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''cat.png"
    r = await c.get(f"/v1/files/{fid}/preview", params={"as_attachment": "maybe"}, headers=h)
    assert r.status_code == 400
    # another app: its key sees the file as not its own
    _, other = await second_app(server)
    r = await c.get(f"/v1/files/{fid}/preview", headers=auth(other))
    assert (r.status_code, r.json()["code"]) == (403, "file_access_denied")
    r = await c.get("/v1/files/not-a-uuid/preview", headers=h)
    assert r.status_code == 404


async def test_html_is_always_a_download(server: Server) -> None:
    await set_config(server, file_upload={"enabled": True, "allowed_file_types": ["document"],
                                          "allowed_file_upload_methods": ["local_file"]})
    fid = (await upload(server, "page.html", b"<script>", "text/html")).json()["id"]
    r = await server.chat("read", files=[{"transfer_method": "local_file",
                                          "upload_file_id": fid}])
    assert r.status_code == 200, r.text
    r = await server.client.get(f"/v1/files/{fid}/preview", headers=server.auth())
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment")


async def test_files_entry_errors(server: Server) -> None:
    await set_config(server, file_upload={**IMAGES_ON, "allowed_file_types": ["image"],
                                          "number_limits": 2})
    _, other = await second_app(server)
    foreign = (await upload(server, key=other)).json()["id"]
    mine = (await upload(server)).json()["id"]
    txt = (await upload(server, "a.txt", b"a", "text/plain")).json()["id"]
    cases = [
        ({"transfer_method": "ftp"}, "No matching enum found for value 'ftp'"),
        ({"transfer_method": "local_file"}, "Invalid upload file id"),
        ({"transfer_method": "local_file", "upload_file_id": "x"},
         "Invalid upload file id format"),
        ({"transfer_method": "local_file", "upload_file_id": foreign}, "Invalid upload file"),
        ({"transfer_method": "local_file", "upload_file_id": mine, "type": "movie"},
         "'movie' is not a valid FileType"),
        ({"transfer_method": "local_file", "upload_file_id": txt},
         "File validation failed for file: a.txt"),
    ]
    for entry, message in cases:
        r = await server.chat("x", files=[entry])
        assert (r.status_code, r.json()["message"]) == (400, message), entry
    three = [{"transfer_method": "local_file", "upload_file_id": mine}] * 3
    r = await server.chat("x", files=three)
    assert r.json()["message"] == "Number of files exceeds the maximum limit 2"
    skipped = [{"type": "image"}, {"transfer_method": "remote_url"}]
    assert (await server.chat("x", files=skipped)).status_code == 200
