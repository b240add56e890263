"""Meeting an accuracy budget by keeping the most sensitive layers of an INT8 file in float (issue 21)."""
