"""The built-in Python buildpack."""

from kapal.build.python.buildpack import PythonBuildpack

__all__ = ["PythonBuildpack"]
