"""Local servers speaking the AI backends' HTTP APIs (OpenAI chat/images, LibreTranslate, ComfyUI)."""
