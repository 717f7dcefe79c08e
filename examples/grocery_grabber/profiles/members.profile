# The demo shop's page for logged-in shoppers (examples/shop, "/members"):
# the select page, and a .account element only a session cookie from /login
# shows. Without it a run ends at once with "not logged in to the shop".
status         = .stock-status
in_stock       = in stock
out_of_stock   = out of stock
offers         = select #sku
quantity.input = #quantity
buy            = #buy
result         = .order-result
success        = confirmed
logged_in      = .account
