"""The data: the course's official folder layout, the SynthDance stand-in that fills it, and real footage."""
