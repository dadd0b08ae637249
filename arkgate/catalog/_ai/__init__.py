"""Backend adapters and pricing shared by the AI endpoints (ai-chat, ai-translate, translate, image-generate).

Private to the catalog: the registry skips modules whose name starts with ``_``.
"""
