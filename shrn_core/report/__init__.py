"""Pictures of results: a summary sheet per photo (``<stem>.summary.png``) and a static HTML
gallery per output folder (``index.html``). See docs/formats.md."""
from .gallery import collect_cards, write_gallery
from .summary import (SheetInputs, load_inputs, render_sheet, summary_for_folder, summary_path, write_reconstruction_summary,
                      write_summary)

__all__ = ["SheetInputs", "load_inputs", "render_sheet", "write_summary", "summary_for_folder", "summary_path",
           "write_reconstruction_summary", "write_gallery", "collect_cards"]
