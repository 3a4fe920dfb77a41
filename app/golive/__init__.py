"""The guide's go-live checklist, checked by the app itself where it can be.

`verdicts` decides (plain facts in, one verdict per item out, no Flask); `facts` gathers those facts from
the running app; `probes` runs the app's own code to see what it does (a verify on the wire, the widget's
final states); `wording` words the verdicts for staff. The console page and `flask passid checklist` use it
alike; it imports no blueprint (the widget's drawing comes through `app.plumbing.final_state_drawing`).
"""
