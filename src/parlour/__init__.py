"""parlour: a self-hosted chat-app server that speaks the Dify Chat App Service API."""

__version__ = "0.1.0"
