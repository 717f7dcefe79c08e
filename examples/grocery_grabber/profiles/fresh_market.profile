# The demo shop's page (examples/shop, "/"): SKUs in a native <select>.
# These are also site_profile's defaults.
status         = .stock-status
in_stock       = in stock
out_of_stock   = out of stock
offers         = select #sku    # each option: value, label, data-price, data-stock, data-category
quantity.input = #quantity
buy            = #buy
result         = .order-result
success        = confirmed
