"""switchnas hardware plugin for MyBoard (template)."""

from .plugin import MyBoardPlugin

__all__ = ["MyBoardPlugin"]
