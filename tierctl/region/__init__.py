"""The regional roll-up (issue 18): every centre of one shared database side by side."""
