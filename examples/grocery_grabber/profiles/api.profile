# The demo shop's JSON page (examples/shop, "/api-shop"): the page shows no
# stock at all; its script polls GET /api/stock every 200 ms, which answers
#   {"skus":[{"sku":"veg-box","price":18.5,"stock":3}, ...]}
# The grabber reads those responses as the page receives them (nothing is
# intercepted or changed), and picks and buys on the page.
stock_response    = /api/stock        # the responses that carry the stock
stock_offers      = $.skus[*]         # each offer object in the body
stock_offer.sku   = sku
stock_offer.stock = stock             # a count: in stock above 0
stock_offer.price = price
stock_confirm     = response          # a newer response (not from a cache) confirms a restock
offers            = select #sku       # where the offer is chosen
quantity.input    = #quantity
buy               = #buy
result            = .order-result
success           = confirmed
