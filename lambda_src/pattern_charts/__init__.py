"""PatternWatch's chart renderer: candlesticks and volume (mplfinance) with the detected patterns drawn by tier.

One renderer for the demo's PNGs, each alert's evidence chart and the docs (docs/charts.md). It ships in the
`chart-dependencies` Lambda layer, so only the functions that draw carry it. Importing this package (or
`pattern_charts.annotations`) loads no plotting library; `pattern_charts.render.render_chart` imports
matplotlib, pandas and mplfinance on its first call.
"""
