from ._resize import resize
