"""How a CNN's accuracy grows with its width and depth: the library behind the DVC stages in stages/."""
