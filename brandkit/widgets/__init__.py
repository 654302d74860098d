"""Notebook widgets: upload files, page through cleaning diffs, watch the loss, compare, vote, edit, play.

- common:     ipywidgets, the stylesheet, escaping (the same on 7.7.1, Colab, and 8.x, JupyterLab);
- data:       the collect notebook's upload and the clean notebook's diff pager;
- training:   the answers-only mask and the live loss plot;
- comparison: blind votes, blind editing and the labelled view;
- playground: any request, the contenders answering side by side as they stream.
"""

from .common import CSS, _ipw, _major, esc
from .comparison import BLIND, EDIT, LABELLED, Comparison, badges
from .data import DiffPager, inline_diff, upload_widget
from .playground import Playground
from .training import LiveLossPlot, mask_html

__all__ = ["CSS", "BLIND", "EDIT", "LABELLED", "Comparison", "DiffPager", "LiveLossPlot", "Playground", "badges",
           "esc", "inline_diff", "mask_html", "upload_widget", "_ipw", "_major"]
