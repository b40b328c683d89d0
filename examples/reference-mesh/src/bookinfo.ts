import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { serviceHost, serviceTarget } from "./platform.js";

// Istio's Bookinfo (istio/istio samples/bookinfo/src) as gRPC services: what each one answers and
// whom it calls. productpage calls details, then reviews, and renders the page even when one of
// them fails ("Sorry, product reviews are currently unavailable"); reviews v1 shows no stars, v2
// black and v3 red stars from ratings, and says "Ratings service is currently unavailable" when
// ratings fails; the timeouts are Bookinfo's (productpage's calls 3 s, reviews → ratings 10 s).
// Requests carry the `end-user` header on, as Bookinfo's productpage forwards it.

const PROTO = fileURLToPath(new URL("../proto/bookinfo.proto", import.meta.url));

export interface BookDetails {
  id: number;
  author: string;
  year: number;
  type: string;
  pages: number;
  publisher: string;
  language: string;
  isbn10: string;
  isbn13: string;
  servedBy: string;
}
export interface Review {
  reviewer: string;
  text: string;
  stars: number;
  starColor: string;
}
export interface ReviewList {
  id: number;
  reviews: Review[];
  ratingsError: string;
  servedBy: string;
  version: string;
}
export interface RatingList {
  id: number;
  ratings: Record<string, number>;
  servedBy: string;
}
export interface Product {
  id: number;
  title: string;
  details?: BookDetails;
  reviews: Review[];
  detailsError: string;
  reviewsError: string;
  servedBy: string;
  reviewsServedBy: string;
}

type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

/** A generated client: the service's methods plus grpc.Client's. */
type ServiceClient<M> = grpc.Client & M;
type ClientConstructor<M> = new (
  target: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => ServiceClient<M>;

export interface BookinfoPackage {
  ProductPage: ClientConstructor<{ GetProduct: Unary<{ productId: number }, Product> }> & {
    service: grpc.ServiceDefinition;
  };
  Details: ClientConstructor<{ GetDetails: Unary<{ productId: number }, BookDetails> }> & {
    service: grpc.ServiceDefinition;
  };
  Reviews: ClientConstructor<{ GetReviews: Unary<{ productId: number }, ReviewList> }> & {
    service: grpc.ServiceDefinition;
  };
  Ratings: ClientConstructor<{ GetRatings: Unary<{ productId: number }, RatingList> }> & {
    service: grpc.ServiceDefinition;
  };
}

/** The `bookinfo` package from proto/bookinfo.proto. */
export function loadBookinfo(): BookinfoPackage {
  const definition = protoLoader.loadSync(PROTO, { longs: Number, enums: String, defaults: true });
  return grpc.loadPackageDefinition(definition).bookinfo as unknown as BookinfoPackage;
}

/** Calls a generated unary method as a promise. */
export function call<Req, Res>(
  method: Unary<Req, Res>,
  client: grpc.Client,
  request: Req,
  metadata: grpc.Metadata,
  timeoutMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) =>
      error ? reject(error) : resolve(response as Res),
    );
  });
}

/** Headers Bookinfo's productpage forwards to the services it calls (the user, for routing). */
export function forwardedHeaders(incoming: grpc.Metadata): grpc.Metadata {
  const out = new grpc.Metadata();
  for (const key of ["end-user"]) {
    const value = incoming.get(key)[0];
    if (typeof value === "string") out.set(key, value);
  }
  return out;
}

/** What a workload needs to build its service. */
export interface ServiceContext {
  readonly pod: string;
  readonly version: string;
  readonly bookinfo: BookinfoPackage;
  /** Creates a client of another service with the workload's credentials and interceptors. */
  client<M>(ctor: ClientConstructor<M>, app: string): ServiceClient<M>;
}

/** A service's definition and implementation, ready for `server.addService`. */
export interface ServiceImplementation {
  readonly definition: grpc.ServiceDefinition;
  readonly implementation: grpc.UntypedServiceImplementation;
  /** Closes the clients it made. */
  close(): void;
}

const describeError = (error: unknown) =>
  error instanceof Error && "code" in error
    ? `${grpc.status[(error as grpc.ServiceError).code]}`
    : String(error);

type Handler<Req, Res> = (request: Req, metadata: grpc.Metadata) => Promise<Res>;

function unary<Req, Res>(handler: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (serverCall, callback) => {
    handler(serverCall.request, serverCall.metadata).then(
      (response) => callback(null, response),
      (error: unknown) =>
        callback({
          code: grpc.status.INTERNAL,
          details: error instanceof Error ? error.message : String(error),
        }),
    );
  };
}

/** productpage: details, then reviews. */
export function productPage(ctx: ServiceContext): ServiceImplementation {
  const details = ctx.client(ctx.bookinfo.Details, "details");
  const reviews = ctx.client(ctx.bookinfo.Reviews, "reviews");
  const GetProduct = unary<{ productId: number }, Product>(async ({ productId }, metadata) => {
    const headers = forwardedHeaders(metadata);
    const product: Product = {
      id: productId,
      title: "The Comedy of Errors",
      reviews: [],
      detailsError: "",
      reviewsError: "",
      servedBy: ctx.pod,
      reviewsServedBy: "",
    };
    try {
      product.details = await call(details.GetDetails, details, { productId }, headers, 3000);
    } catch (error) {
      product.detailsError = `Sorry, product details are currently unavailable (${describeError(error)})`;
    }
    try {
      const list = await call(reviews.GetReviews, reviews, { productId }, headers, 3000);
      product.reviews = list.reviews;
      product.reviewsServedBy = list.servedBy;
    } catch (error) {
      product.reviewsError = `Sorry, product reviews are currently unavailable (${describeError(error)})`;
    }
    return product;
  });
  return {
    definition: ctx.bookinfo.ProductPage.service,
    implementation: { GetProduct },
    close: () => {
      details.close();
      reviews.close();
    },
  };
}

/** details: the book. */
export function detailsService(ctx: ServiceContext): ServiceImplementation {
  const GetDetails = unary<{ productId: number }, BookDetails>(async ({ productId }) => ({
    id: productId,
    author: "William Shakespeare",
    year: 1595,
    type: "paperback",
    pages: 200,
    publisher: "PublisherA",
    language: "English",
    isbn10: "1234567890",
    isbn13: "123-1234567890",
    servedBy: ctx.pod,
  }));
  return { definition: ctx.bookinfo.Details.service, implementation: { GetDetails }, close: () => undefined };
}

/** reviews: v1 without stars; v2 (black) and v3 (red) with ratings' stars. */
export function reviewsService(ctx: ServiceContext): ServiceImplementation {
  const ratings = ctx.version === "v1" ? undefined : ctx.client(ctx.bookinfo.Ratings, "ratings");
  const color = ctx.version === "v2" ? "black" : ctx.version === "v3" ? "red" : "";
  const GetReviews = unary<{ productId: number }, ReviewList>(async ({ productId }, metadata) => {
    const list: ReviewList = {
      id: productId,
      reviews: [
        {
          reviewer: "Reviewer1",
          text: "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
          stars: 0,
          starColor: "",
        },
        {
          reviewer: "Reviewer2",
          text: "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
          stars: 0,
          starColor: "",
        },
      ],
      ratingsError: "",
      servedBy: ctx.pod,
      version: ctx.version,
    };
    if (ratings !== undefined) {
      try {
        const r = await call(ratings.GetRatings, ratings, { productId }, forwardedHeaders(metadata), 10_000);
        for (const review of list.reviews) {
          review.stars = r.ratings[review.reviewer] ?? 0;
          review.starColor = color;
        }
      } catch (error) {
        list.ratingsError = `Ratings service is currently unavailable (${describeError(error)})`;
      }
    }
    return list;
  });
  return {
    definition: ctx.bookinfo.Reviews.service,
    implementation: { GetReviews },
    close: () => ratings?.close(),
  };
}

/** ratings: Bookinfo's two ratings. */
export function ratingsService(ctx: ServiceContext): ServiceImplementation {
  const GetRatings = unary<{ productId: number }, RatingList>(async ({ productId }) => ({
    id: productId,
    ratings: { Reviewer1: 5, Reviewer2: 4 },
    servedBy: ctx.pod,
  }));
  return { definition: ctx.bookinfo.Ratings.service, implementation: { GetRatings }, close: () => undefined };
}

/** The service of an app. */
export function serviceFor(app: string, ctx: ServiceContext): ServiceImplementation {
  switch (app) {
    case "productpage":
      return productPage(ctx);
    case "details":
      return detailsService(ctx);
    case "reviews":
      return reviewsService(ctx);
    case "ratings":
      return ratingsService(ctx);
    default:
      throw new Error(`no service for app ${app}`);
  }
}

export { serviceHost, serviceTarget };
