! Example 05: the heat diffusion of example 04 on several MPI ranks sharing one server.
! Each rank owns a subdomain (with its own initial condition) and keys prefixed by its
! rank; every rank calls the same stored surrogate. Rank 0 reports the worst error and a
! checksum over all ranks.
!   mpirun -np 4 05_mpi_heat_surrogate ADDRESS MODEL.onnx
program mpi_heat
  use, intrinsic :: iso_fortran_env, only: real32, real64
  use mpi_f08
  use insitu
  implicit none
  integer, parameter :: nx = 16, ny = 16, steps = 10
  real(real32), parameter :: alpha = 0.2_real32
  real(real32) :: u(1, 1, nx, ny), expected(1, 1, nx, ny), padded(0:nx + 1, 0:ny + 1)
  real(real32) :: worst, worst_all
  real(real64) :: checksum, checksum_all
  type(insitu_client) :: c
  character(len=512) :: address, model
  character(len=32) :: key_in, key_out
  integer :: rank, nranks, step, i, j

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks)
  call get_command_argument(1, address)
  call get_command_argument(2, model)
  call c%connect(trim(address))
  if (rank == 0) call c%set_model_from_file("heat_step", trim(model))
  call MPI_Barrier(MPI_COMM_WORLD)

  write(key_in, '(a, i0)') "u.rank", rank
  write(key_out, '(a, i0)') "u_next.rank", rank
  u = 0
  u(1, 1, 1 + rank:nx / 2 + rank, ny / 4:3 * ny / 4) = 10.0_real32 * (rank + 1)
  worst = 0
  do step = 1, steps
    padded = 0
    padded(1:nx, 1:ny) = u(1, 1, :, :)
    do j = 1, ny
      do i = 1, nx
        expected(1, 1, i, j) = padded(i, j) + alpha * (padded(i - 1, j) + padded(i + 1, j) &
          + padded(i, j - 1) + padded(i, j + 1) - 4 * padded(i, j))
      end do
    end do
    call c%put_tensor(trim(key_in), u)
    call c%run_model("heat_step", [key_in], [key_out])
    call c%get_tensor(trim(key_out), u)
    worst = max(worst, maxval(abs(u - expected)))
  end do
  checksum = sum(real(u, real64))
  call MPI_Reduce(worst, worst_all, 1, MPI_REAL, MPI_MAX, 0, MPI_COMM_WORLD)
  call MPI_Reduce(checksum, checksum_all, 1, MPI_DOUBLE_PRECISION, MPI_SUM, 0, MPI_COMM_WORLD)
  call c%close()
  if (rank == 0) then
    print '(a, i0, a, es10.3)', "example 05: ", nranks, " ranks, max |surrogate - solver| = ", worst_all
    print '(a, es25.17)', "checksum = ", checksum_all
    if (worst_all > 1e-3_real32) error stop "surrogate disagrees with the solver"
    print '(a)', "example 05: all ranks shared one server OK"
  end if
  call MPI_Finalize()
end program mpi_heat
