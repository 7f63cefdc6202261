"""One error tree. Each error carries the Dify wire triple: HTTP status, ``code``, ``message``."""

from __future__ import annotations

from typing import ClassVar


class ParlourError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_server_error"
    default_message: ClassVar[str] = "Internal Server Error, please contact support."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = self.default_message if message is None else message
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "status": self.status}


class InvalidParam(ParlourError):
    status, code, default_message = 400, "invalid_param", ""


class BadRequest(ParlourError):
    status, code = 400, "bad_request"
    default_message = "The browser (or proxy) sent a request that this server could not understand."


class Unauthorized(ParlourError):
    status, code = 401, "unauthorized"
    default_message = "Access token is invalid"

    def __init__(self, message: str | None = None):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="api"'})


class Forbidden(ParlourError):
    status, code = 403, "forbidden"
    default_message = (
        "You don't have the permission to access the requested resource. "
        "It is either read-protected or not readable by the server."
    )


class NotFound(ParlourError):
    status, code = 404, "not_found"
    default_message = (
        "The requested URL was not found on the server. If you entered the URL manually "
        "please check your spelling and try again."
    )


class MethodNotAllowed(ParlourError):
    status, code = 405, "method_not_allowed"
    default_message = "The method is not allowed for the requested URL."


class PayloadTooLarge(ParlourError):
    status, code = 413, "request_entity_too_large"
    default_message = "The data value transmitted exceeds the capacity limit."


class UnsupportedMediaType(ParlourError):
    status, code = 415, "unsupported_media_type"
    default_message = (
        "Did not attempt to load JSON data because the request Content-Type was not "
        "'application/json'."
    )


class TooManyRequests(ParlourError):
    status, code = 429, "too_many_requests"
    default_message = "Too many requests. Please try again later."


class ServiceUnavailable(ParlourError):
    status, code = 503, "service_unavailable"
    default_message = "The server is busy. Please try again later."


class DatabaseUnavailable(ServiceUnavailable):
    default_message = "The database is unavailable. Please try again shortly."


class NotChatApp(ParlourError):
    status, code = 400, "not_chat_app"
    default_message = "Please check if your app mode matches the right API route."


class AppUnavailable(ParlourError):
    status, code = 400, "app_unavailable"
    default_message = "App unavailable, please check your app configurations."


class ConversationNotExists(NotFound):
    default_message = "Conversation Not Exists."


class MessageNotExists(NotFound):
    default_message = "Message Not Exists."


class LastConversationNotExists(NotFound):
    default_message = "Last Conversation Not Exists."


class FirstMessageNotExists(NotFound):
    default_message = "First Message Not Exists."


class ConversationVariableNotExists(NotFound):
    default_message = "Conversation Variable Not Exists."


class EndUserNotFound(NotFound):
    code, default_message = "end_user_not_found", "End user not found."


# --- model provider failures (Dify's codes) -------------------------------------------------


class ProviderError(ParlourError):
    """A failure of the model behind an app."""

    status, code = 400, "completion_request_error"
    default_message = "Connection Error"


class ProviderNotInitialize(ProviderError):
    code = "provider_not_initialize"
    default_message = "Provider is not initialized: check the model settings of the app."


class ProviderQuotaExceeded(ProviderError):
    code = "provider_quota_exceeded"
    default_message = (
        "Your quota for the model provider has been exhausted. "
        "Please check the provider's billing and limits."
    )


class ModelNotSupported(ProviderError):
    code = "model_currently_not_support"
    default_message = "The model is not supported by the provider."


class CompletionRequestError(ProviderError):
    code = "completion_request_error"


class InternalError(ParlourError):
    """Anything unexpected; never shows a traceback."""


# --- files, audio, annotations (Dify's codes) ----------------------------------------------


class NoFileUploaded(ParlourError):
    status, code, default_message = 400, "no_file_uploaded", "Please upload your file."


class TooManyFiles(ParlourError):
    status, code, default_message = 400, "too_many_files", "Only one file is allowed."


class UnsupportedFileType(ParlourError):
    status, code, default_message = 415, "unsupported_file_type", "File type not allowed."


class FilenameNotExists(ParlourError):
    status, code = 400, "filename_not_exists_error"
    default_message = "The specified filename does not exist."


class FileTooLarge(ParlourError):
    status, code = 413, "file_too_large"
    default_message = "File size exceeded."


class FileNotFound(ParlourError):
    status, code, default_message = 404, "file_not_found", "File not found in message context"


class FileAccessDenied(ParlourError):
    status, code = 403, "file_access_denied"
    default_message = "File access denied: not owned by requesting app"


class BadRequestKeyError(BadRequest):
    code = "bad_request_key_error"


class AudioTooLarge(ParlourError):
    status, code, default_message = 413, "audio_too_large", "Audio size larger than 30 mb"


class UnsupportedAudioType(ParlourError):
    status, code, default_message = 415, "unsupported_audio_type", "Audio type not allowed."


class AnnotationNotFound(NotFound):
    default_message = "Annotation not found"


# --- knowledge API (Dify's dataset codes) --------------------------------------------------


class DatasetNotFound(NotFound):
    default_message = "Dataset not found."


class DocumentNotFound(NotFound):
    default_message = "Document not found."


class DatasetNameDuplicate(ParlourError):
    status, code = 409, "dataset_name_duplicate"
    default_message = "The dataset name already exists. Please modify your dataset name."


class DocumentIndexing(ParlourError):
    status, code = 400, "document_indexing"
    default_message = "The document is being processed and cannot be edited."
